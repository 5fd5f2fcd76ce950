"""Submissions, written in groups (see `homeport.db.groups`): one transaction for every
submission that arrived meanwhile, answered only once it has committed.

What is the leaderboards' own: the group's changes go out on the change feed in the same
transaction (NOTIFY on PostgreSQL, a `leaderboard_changes` row on SQLite), and once it has
committed they reach this process's rank indexes before any submission is answered. A board or
player that does not exist refuses only the submissions that name it: both are checked in the
transaction (and, on PostgreSQL, locked against deletion until it commits), so the foreign keys
never fail a whole group.

On PostgreSQL a group is two statements between BEGIN and COMMIT, whatever its size, on a
connection of the writer's own. The first locks the boards and players (`FOR KEY SHARE`) and
the group's records (`FOR UPDATE`, one primary-key lookup each, in key order: no deadlocks
between processes, and a plan that does not depend on statistics) and reads them all. The
second writes the records, the periods not yet recorded and the feed. The first must name each
board's current period, which follows from its rules: it takes them from earlier groups, and a
group that finds a board's rules were not the ones it assumed (the first group on a board, or
a board deleted and made again) is written again, as is one that finds a record inserted by
another process in between: the version test of the upsert does not overwrite it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import Connection, Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine

from homeport.clock import Clock
from homeport.db.groups import GroupWriter, SqliteColumns, sqlite_cursor
from homeport.errors import HomeportError
from homeport.leaderboards import feed
from homeport.leaderboards.boards import BoardRule
from homeport.leaderboards.feed import Change
from homeport.leaderboards.models import Leaderboard
from homeport.leaderboards.periods import Period, Reset
from homeport.leaderboards.schemas import Operator, Order
from homeport.leaderboards.submissions import (
    Plan,
    RecordKey,
    Result,
    Stored,
    Submission,
    plan,
    written,
)
from homeport.settings import Settings

_PG_READ = (
    "SELECT 0, id, NULL::uuid, NULL::bigint, NULL::bigint, NULL::bigint, NULL::int, sort_order,"
    " operator, reset, cron, created_at FROM (SELECT * FROM leaderboards"
    " WHERE id = ANY($1::text[]) ORDER BY id FOR KEY SHARE) AS b"
    " UNION ALL SELECT 1, NULL, id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
    " FROM (SELECT id FROM accounts WHERE id = ANY($2::uuid[]) ORDER BY id FOR KEY SHARE) AS a"
    " UNION ALL SELECT 2, r.board_id, r.player_id, r.score, r.subscore, r.reached_us, r.version,"
    " r.period, r.metadata::text, NULL, NULL, r.updated_at"
    " FROM unnest($3::text[], $4::text[], $5::uuid[]) AS v(b, p, id) CROSS JOIN LATERAL"
    " (SELECT * FROM leaderboard_records WHERE board_id = v.b AND period = v.p"
    " AND player_id = v.id FOR UPDATE) AS r"
)
"""Boards (kind 0), players (1) and records (2), locked in that order: the order in which an
account's erasure takes them too."""
# The version test turns a row inserted by another process since the read into a conflict that
# is not overwritten (and not counted). The feed's CTE calls a volatile function, so it is
# never folded away: counting its rows sends every payload.
_PG_WRITE = (
    "WITH w AS (INSERT INTO leaderboard_records AS r (board_id, period, player_id, score,"
    " subscore, order_score, order_subscore, metadata, reached_us, updated_at, version)"
    " SELECT v.b, v.p, v.pl, v.s, v.ss, v.os, v.oss, v.m::json, v.us, $10, v.ver"
    " FROM unnest($1::text[], $2::text[], $3::uuid[], $4::bigint[], $5::bigint[],"
    " $6::bigint[], $7::bigint[], $8::text[], $9::bigint[], $11::int[])"
    " AS v(b, p, pl, s, ss, os, oss, m, us, ver)"
    " ON CONFLICT (board_id, period, player_id) DO UPDATE SET score = excluded.score,"
    " subscore = excluded.subscore, order_score = excluded.order_score,"
    " order_subscore = excluded.order_subscore, metadata = excluded.metadata,"
    " reached_us = excluded.reached_us, updated_at = excluded.updated_at,"
    " version = excluded.version WHERE r.version = excluded.version - 1 RETURNING 1),"
    " p AS (INSERT INTO leaderboard_periods (board_id, period, starts_at, ends_at)"
    " SELECT * FROM unnest($12::text[], $13::text[], $14::timestamptz[], $15::timestamptz[])"
    " ON CONFLICT DO NOTHING),"
    " n AS (SELECT pg_notify($16, x) FROM unnest($17::text[]) AS x)"
    " SELECT (SELECT count(*) FROM w), (SELECT count(*) FROM n)"
)
_SQ_BOARDS = (
    "SELECT id, sort_order, operator, reset, cron, created_at FROM leaderboards WHERE id IN ({})"
)
_SQ_PLAYERS = "SELECT id FROM accounts WHERE id IN ({})"
_SQ_RECORDS = (
    "SELECT player_id, score, subscore, metadata, reached_us, updated_at, version"
    " FROM leaderboard_records WHERE board_id = ? AND period = ? AND player_id IN ({})"
)
_SQ_UPSERT = (
    "INSERT INTO leaderboard_records (board_id, period, player_id, score, subscore,"
    " order_score, order_subscore, metadata, reached_us, updated_at, version)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (board_id, period, player_id) DO UPDATE SET score = excluded.score,"
    " subscore = excluded.subscore, order_score = excluded.order_score,"
    " order_subscore = excluded.order_subscore, metadata = excluded.metadata,"
    " reached_us = excluded.reached_us, updated_at = excluded.updated_at,"
    " version = excluded.version"
)
_SQ_PERIOD = (
    "INSERT INTO leaderboard_periods (board_id, period, starts_at, ends_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
WRITER_CACHE_KIB = 65_536
WRITER_CHECKPOINT_PAGES = 10_000
MAX_REMEMBERED = 10_000
Outcome = Result | HomeportError


class _ReadAgain(asyncpg.exceptions.SerializationError):  # type: ignore[misc]
    """The group read what it did not expect; nothing was written, so it is written again (and
    answered 503 if that keeps happening, as any serialization failure is)."""


class _Rules:
    """Board rules by their row (a board never changes; a new one with the same id is another
    board), the latest seen of each id, and the periods known to be recorded."""

    def __init__(self) -> None:
        self._rules: dict[tuple[Any, ...], BoardRule] = {}
        self.latest: dict[str, BoardRule] = {}
        self._periods: set[tuple[str, datetime, str]] = set()

    def rule(self, row: Any, time_out: Callable[[Any], datetime] | None = None) -> BoardRule:
        """The rules in a `leaderboards` row (id, sort_order, operator, reset, cron,
        created_at); `time_out` reads a stored time where the driver does not."""
        key = (row[0], row[1], row[2], row[3], row[4], row[5])
        found = self._rules.get(key)
        if found is None:
            created = row[5] if time_out is None else time_out(row[5])
            rule = BoardRule(
                row[0], Order(row[1]), Operator(row[2]), Reset(row[3]), row[4], created
            )
            if len(self._rules) >= MAX_REMEMBERED:
                self._rules.clear()
                self.latest.clear()
            found = self._rules[key] = rule
        self.latest[row[0]] = found
        return found

    def new_periods(self, result: Plan) -> list[tuple[BoardRule, Period]]:
        """The periods the group writes records in that are not known to be recorded yet."""
        return [
            (rule, period)
            for rule, period in result.periods.values()
            if (rule.id, rule.created_at, period.key) not in self._periods
        ]

    def remember(self, results: list[Result]) -> None:
        """Once committed: the periods of these records are recorded."""
        if len(self._periods) >= MAX_REMEMBERED:
            self._periods.clear()
        self._periods.update((r.board_id, r.rule.created_at, r.period) for r in results)

    def forget(self, board_id: str) -> None:
        """The board was deleted, its periods with it (a new board of that id, even one made
        within the same clock tick, records its own)."""
        self._periods = {marker for marker in self._periods if marker[0] != board_id}


def _lock_order(group: list[Submission], periods: dict[str, str]) -> list[RecordKey]:
    """The group's records (on boards whose period is known), sorted: every process locks
    records in this order."""
    return sorted(
        {(s.board_id, periods[s.board_id], s.player_id) for s in group if s.board_id in periods}
    )


def _signed(results: list[Result]) -> tuple[list[int], list[int]]:
    scores = [r.record.score * r.rule.sign for r in results]
    subscores = [r.record.subscore * r.rule.sign for r in results]
    return scores, subscores


async def write_group_postgres(
    connection: asyncpg.Connection, clock: Clock, rules: _Rules, group: list[Submission]
) -> list[Outcome]:
    """The group, inside the caller's transaction: one statement to lock and read, one to
    write (see the module docstring)."""
    now = clock.now()
    names = sorted({s.board_id for s in group})
    assumed = {b: rules.latest[b].period_at(now).key for b in names if b in rules.latest}
    keys = _lock_order(group, assumed)
    rows = await connection.fetch(
        _PG_READ,
        names,
        sorted({s.player_id for s in group}),
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
    )
    boards: dict[str, BoardRule] = {}
    present: set[uuid.UUID] = set()
    current: dict[RecordKey, Stored] = {}
    for row in rows:
        if row[0] == 2:
            current[(row[1], row[7], row[2])] = Stored(
                row[3], row[4], row[8], row[5], row[11], row[6]
            )
        elif row[0] == 1:
            present.add(row[2])
        else:
            boards[row[1]] = rules.rule((row[1], row[7], row[8], row[9], row[10], row[11]))
    if any(assumed.get(b) != rule.period_at(now).key for b, rule in boards.items()):
        raise _ReadAgain("a board's rules are not the ones the group assumed")
    result = plan(group, boards, present, current, now)
    done = written(result.outcomes)
    if done:
        fresh = rules.new_periods(result)
        scores, subscores = _signed(done)
        count, _ = await connection.fetchrow(
            _PG_WRITE,
            [r.board_id for r in done],
            [r.period for r in done],
            [r.player_id for r in done],
            [r.record.score for r in done],
            [r.record.subscore for r in done],
            scores,
            subscores,
            [r.record.metadata for r in done],
            [r.record.reached_us for r in done],
            now,
            [r.record.version for r in done],
            [rule.id for rule, _ in fresh],
            [period.key for _, period in fresh],
            [period.starts_at for _, period in fresh],
            [period.ends_at for _, period in fresh],
            feed.CHANNEL,
            feed.encode(r.change for r in done),
        )
        if count != len(done):
            raise _ReadAgain("another process inserted one of the group's records")
    return result.outcomes


class _SqliteTypes:
    """SQLAlchemy's own conversions for the times the raw SQLite statements pass."""

    def __init__(self, engine: Engine) -> None:
        columns = SqliteColumns(engine, Leaderboard.__table__)
        self.time_in = columns.bind("created_at")
        self.time_out = columns.read("created_at")


def write_group_sqlite(
    connection: Connection,
    types: _SqliteTypes,
    clock: Clock,
    rules: _Rules,
    group: list[Submission],
) -> list[Outcome]:
    """`write_group_postgres` on the raw SQLite connection, inside the caller's transaction
    (which holds the write lock: nothing needs locking row by row)."""
    now = clock.now()
    cursor = sqlite_cursor(connection)
    try:
        names = sorted({s.board_id for s in group})
        cursor.execute(_SQ_BOARDS.format(",".join("?" * len(names))), names)
        boards = {row[0]: rules.rule(row, types.time_out) for row in cursor.fetchall()}
        ids = sorted({s.player_id.hex for s in group})
        cursor.execute(_SQ_PLAYERS.format(",".join("?" * len(ids))), ids)
        present = {uuid.UUID(hex=row[0]) for row in cursor.fetchall()}
        current: dict[RecordKey, Stored] = {}
        periods = {b: rule.period_at(now).key for b, rule in boards.items()}
        by_period: dict[tuple[str, str], list[str]] = {}
        for board_id, period_key, player_id in _lock_order(group, periods):
            by_period.setdefault((board_id, period_key), []).append(player_id.hex)
        for (board_id, period_key), hexes in by_period.items():
            marks = ",".join("?" * len(hexes))
            cursor.execute(_SQ_RECORDS.format(marks), [board_id, period_key, *hexes])
            for r in cursor.fetchall():
                current[(board_id, period_key, uuid.UUID(hex=r[0]))] = Stored(
                    r[1], r[2], r[3], r[4], types.time_out(r[5]), r[6]
                )
        result = plan(group, boards, present, current, now)
        done = written(result.outcomes)
        if done:
            stamp = types.time_in(now)
            scores, subscores = _signed(done)
            cursor.executemany(
                _SQ_UPSERT,
                [
                    (
                        r.board_id,
                        r.period,
                        r.player_id.hex,
                        r.record.score,
                        r.record.subscore,
                        score,
                        subscore,
                        r.record.metadata,
                        r.record.reached_us,
                        stamp,
                        r.record.version,
                    )
                    for r, score, subscore in zip(done, scores, subscores, strict=True)
                ],
            )
        for rule, period in rules.new_periods(result):
            starts = None if period.starts_at is None else types.time_in(period.starts_at)
            ends = None if period.ends_at is None else types.time_in(period.ends_at)
            cursor.execute(_SQ_PERIOD, (rule.id, period.key, starts, ends))
        feed.publish_sqlite(cursor, [r.change for r in done])
    finally:
        cursor.close()
    return result.outcomes


def _writer_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # A board's indexes outgrow SQLite's default 2 MiB page cache at some ten thousand records,
    # and every submission lands on a random page of them. A larger cache keeps them in memory,
    # and checkpointing the write-ahead log less often lets repeated writes of a page coalesce
    # (a checkpoint also waits for the disk).
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
    cursor.close()


class RecordWriter(GroupWriter[Submission, Result]):
    """Each submission's record as stored once committed (`submit`), or its refusal."""

    thread_name = "homeport-leaderboard-writes"
    attempts = 3
    """A group can be read again for its rules and then for a record inserted meanwhile."""
    own_connection = True

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        clock: Clock,
        on_commit: Callable[[list[Change]], None],
    ) -> None:
        super().__init__(settings, engine)
        self._clock = clock
        self._on_commit = on_commit
        self._rules = _Rules()
        self._types: _SqliteTypes | None = None

    def prepare_sqlite(self, engine: Engine) -> None:
        event.listen(engine, "connect", _writer_pragmas)
        self._types = _SqliteTypes(engine)

    async def write_postgres(
        self, connection: asyncpg.Connection, items: list[Submission]
    ) -> list[Outcome]:
        return await write_group_postgres(connection, self._clock, self._rules, items)

    def write_sqlite(self, connection: Connection, items: list[Submission]) -> list[Outcome]:
        assert self._types is not None
        return write_group_sqlite(connection, self._types, self._clock, self._rules, items)

    def forget_board(self, board_id: str) -> None:
        self._rules.forget(board_id)

    def committed(self, items: list[Submission], outcomes: list[Outcome]) -> None:
        done = written(outcomes)
        self._rules.remember(done)
        self._on_commit([r.change for r in done])
