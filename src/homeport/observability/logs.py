"""Log output: the familiar text lines, or one JSON object per line for log collectors.

JSON lines carry `time` (UTC, RFC 3339), `level`, `logger`, `message`, `pid`, the `request_id`
of the request being handled if any, whatever was passed in `extra=`, and `exception` with the
traceback. They go to standard error, like the text lines: standard output is the CLI's.
"""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

import orjson

from homeport.observability import request_ids
from homeport.settings import Settings

TEXT_FORMAT = "[%(levelname)s] %(name)s: %(message)s"
# What every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = request_ids.current.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_") and name not in entry:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def dict_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` for this process and (through Granian) its workers."""
    level = settings.log_level.upper()
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if settings.log_format == "json" else {"format": TEXT_FORMAT}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "homeport",
        "stream": "ext://sys.stderr",
    }
    own = {"handlers": ["homeport"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"homeport": formatter},
        "handlers": {"homeport": handler},
        "root": {"handlers": ["homeport"], "level": level},
        "loggers": {
            "_granian": own,
            "granian.access": own,
            "httpx": {"level": "WARNING"},  # its every request is noise here
        },
    }


def configure(settings: Settings) -> None:
    logging.config.dictConfig(dict_config(settings))
