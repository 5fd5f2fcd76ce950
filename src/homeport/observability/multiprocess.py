"""One scrape reports the whole instance, whichever worker answers it.

`homeport serve` runs a supervisor (the fleet agent), an API process and its workers. Each
writes its counters to files of its own in one directory, and the worker answering a scrape
adds them all up (prometheus_client's multiprocess mode). The directory is named by the
environment variable prometheus_client reads, so that every process started below the
supervisor inherits it; this module is the only one that touches it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

ENV = "PROMETHEUS_MULTIPROC_DIR"
SHARED_MEMORY = Path("/dev/shm")  # noqa: S108 - a directory of our own is made inside


def default_directory(data_dir: Path, shared_memory: Path = SHARED_MEMORY) -> Path:
    """In memory where the system has a tmpfs for it: every counted request writes to these
    files, and on a disk file system those writes cost a quarter of `/v1/validate`'s
    throughput. Named after the data directory, so that instances beside each other differ."""
    if not shared_memory.is_dir():
        return data_dir / "metrics"
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return shared_memory / f"homeport-metrics-{os.getuid()}-{digest}"


def enable(directory: Path) -> None:
    """Start counting in files under `directory`, emptied first: counters begin at zero with
    each start of the instance. Call before any worker process exists."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[ENV] = str(directory.resolve())
    # prometheus_client picks its value class when imported, which the CLI has done already;
    # children of labelled metrics made from now on use the file-backed one.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def discard(directory: Path) -> None:
    """Remove the counters when the instance stops: they count from zero at the next start."""
    shutil.rmtree(directory, ignore_errors=True)


def directory() -> str | None:
    return os.environ.get(ENV)


class _Families:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def exposition(extra: list[Metric]) -> bytes:
    """The Prometheus text of every process's metrics, plus `extra` (the state gauges)."""
    registry = CollectorRegistry(auto_describe=False)
    shared = directory()
    if shared:
        MultiProcessCollector(registry, path=shared)  # type: ignore[no-untyped-call]
    else:  # one process (tests, embedding): its own registry, with process metrics
        registry.register(_Families(REGISTRY.collect()))
    registry.register(_Families(extra))
    return generate_latest(registry)
