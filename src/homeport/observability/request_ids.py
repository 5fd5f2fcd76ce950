"""Each HTTP request's id: the caller's `X-Request-ID` when it is safe to repeat, else a new one.

The id is echoed in the response and put on every log line written while the request is
handled (a context variable follows the request into the tasks it starts), so one id ties a
client's report, a proxy's log and Homeport's log together. An incoming id ends up in log lines
and response headers, hence the narrow alphabet and length: no log or header injection.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from contextvars import ContextVar

HEADER = b"x-request-id"
MAX_LENGTH = 128
_SAFE = re.compile(rb"[A-Za-z0-9._:@+=\-]{1,%d}" % MAX_LENGTH)

current: ContextVar[str | None] = ContextVar("homeport_request_id", default=None)
"""The id of the request being handled, None outside one."""


def new() -> str:
    return os.urandom(16).hex()


def from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's id (the first `X-Request-ID`) if it is safe, else a new one."""
    for name, value in headers:
        if name == HEADER:
            return value.decode("ascii") if _SAFE.fullmatch(value) else new()
    return new()
