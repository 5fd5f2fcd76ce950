"""The counters and histograms Homeport keeps, and the small verbs that move them.

Every metric has labels, even where one value would do: in multiprocess mode a child's value
lives in a file named after the process, and labelled children are made on first use, so a
process that turns multiprocess mode on after importing this module still writes its files
(see `multiprocess.enable`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache

from prometheus_client import Counter, Histogram

from homeport.errors import HomeportError

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
MATCH_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

HTTP_REQUESTS = Counter(
    "homeport_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "homeport_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
VALIDATIONS = Counter(
    "homeport_validations",
    "POST /v1/validate outcomes: result ok, or refused with the problem type as reason.",
    ["result", "reason"],
)
HEARTBEATS = Counter(
    "homeport_heartbeats",
    "Server heartbeats: result ok, or refused with the problem type as reason.",
    ["result", "reason"],
)
PLAYER_SAVES = Counter(
    "homeport_player_data_saves",
    "Player-data writes (document PUT, PATCH, batch): ok, or refused with the reason.",
    ["kind", "result", "reason"],
)
WORLD_SNAPSHOTS = Counter(
    "homeport_world_snapshot_commits",
    "World snapshot commits: ok, or refused with the reason.",
    ["result", "reason"],
)
ALLOCATIONS = Counter(
    "homeport_fleet_allocations",
    "Fleet allocations (API and matchmaker): ok, or refused with the reason.",
    ["fleet", "result", "reason"],
)
TIME_TO_MATCH = Histogram(
    "homeport_matchmaking_time_to_match_seconds",
    "From a ticket's creation to its match having a server, per queue.",
    ["queue"],
    buckets=MATCH_BUCKETS,
)
PROCESS_STARTS = Counter(
    "homeport_fleet_process_starts",
    "Game-server processes the fleet agent started (result started) or could not (failed).",
    ["fleet", "result"],
)
PROCESS_RESTARTS = Counter(
    "homeport_fleet_process_restarts",
    "Starts that replace a crashed server (the fleet's crash streak was not zero).",
    ["fleet"],
)
PROCESS_EXITS = Counter(
    "homeport_fleet_process_exits",
    "Game-server processes that ended: stopped (asked to, or done) or crashed.",
    ["fleet", "outcome"],
)

OK = "ok"
REFUSED = "refused"
UNEXPECTED = "error"


def reason_of(exc: BaseException) -> str:
    """A bounded label for why something was refused: a problem type slug, or "error"."""
    return exc.slug if isinstance(exc, HomeportError) else UNEXPECTED


def outcome_counter(counter: Counter, **labels: str) -> Callable[[str], None]:
    """`count(reason)`: ok when the reason is "ok", refused with that reason otherwise."""
    cache: dict[str, Callable[[], None]] = {}

    def count(reason: str) -> None:
        inc = cache.get(reason)
        if inc is None:
            if reason == OK:
                child = counter.labels(**labels, result=OK, reason="")
            else:
                child = counter.labels(**labels, result=REFUSED, reason=reason)
            inc = cache[reason] = child.inc
        inc()

    return count


count_validation = outcome_counter(VALIDATIONS)
count_heartbeat = outcome_counter(HEARTBEATS)
count_snapshot_commit = outcome_counter(WORLD_SNAPSHOTS)


@contextmanager
def outcome(count: Callable[[str], None]) -> Iterator[None]:
    """Count the block's outcome: ok when it returns, the error's reason when it raises."""
    try:
        yield
    except Exception as exc:  # a cancelled wait is no outcome
        count(reason_of(exc))
        raise
    count(OK)


@cache
def count_save(kind: str) -> Callable[[str], None]:
    return outcome_counter(PLAYER_SAVES, kind=kind)


@cache
def count_allocation(fleet: str) -> Callable[[str], None]:
    return outcome_counter(ALLOCATIONS, fleet=fleet)


def observe_match(queue: str, created_at: datetime, allocated_at: datetime) -> None:
    TIME_TO_MATCH.labels(queue=queue).observe(max(0.0, (allocated_at - created_at).total_seconds()))


def count_process_start(fleet: str, *, started: bool, after_crash: bool) -> None:
    PROCESS_STARTS.labels(fleet=fleet, result="started" if started else "failed").inc()
    if started and after_crash:
        PROCESS_RESTARTS.labels(fleet=fleet).inc()


def count_process_exit(fleet: str, outcome: str) -> None:
    PROCESS_EXITS.labels(fleet=fleet, outcome=outcome).inc()
