"""Submissions, written in groups: one transaction for every submission that arrived meanwhile.

As with heartbeats (`registry.heartbeats`), thousands of submissions a second would spend their
time in BEGIN and COMMIT, and on SQLite queue on the one write lock, if each had its own
transaction. Each submission joins the next group instead; one task writes the group in a single
transaction (on PostgreSQL on a raw asyncpg connection, on SQLite whole in one worker thread) and
only then answers each submission with its own outcome, so a 2xx still means "committed". The
group's changes reach every process's rank index through the feed, in the same transaction.

A board or player that does not exist refuses only the submissions that name it: both are
checked in the transaction (and, on PostgreSQL, locked against deletion until it commits), so
the foreign keys never fail a whole group.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, cast

import asyncpg
from sqlalchemy import Engine, Table, event
from sqlalchemy.ext.asyncio import AsyncEngine

from homeport.clock import Clock
from homeport.db.engine import SqliteWriterTurn, create_sqlite_thread_engine
from homeport.errors import HomeportError
from homeport.leaderboards import feed
from homeport.leaderboards.boards import BoardRule
from homeport.leaderboards.feed import Change
from homeport.leaderboards.models import Leaderboard
from homeport.leaderboards.periods import Reset
from homeport.leaderboards.schemas import Operator, Order
from homeport.leaderboards.submissions import (
    Plan,
    RecordKey,
    Result,
    Stored,
    Submission,
    periods_of,
    plan,
)
from homeport.settings import Settings

MAX_GROUP = 900
"""Submissions per transaction: SQLite builds before 3.32 take at most 999 bound values."""
_boards_table = cast(Table, Leaderboard.__table__)
_PG_BOARDS = (
    "SELECT id, sort_order, operator, reset, cron, created_at FROM leaderboards"
    " WHERE id = ANY($1::text[]) FOR KEY SHARE"
)
_PG_PLAYERS = "SELECT id FROM accounts WHERE id = ANY($1::uuid[]) FOR KEY SHARE"
# One board and period at a time (a group rarely spans more), one primary-key lookup per player
# in the order given: the plan cannot depend on statistics (a freshly loaded table has none, and
# the planner then scans the whole period), and rows are locked in the sorted order given.
_PG_RECORDS = (
    "SELECT r.player_id, r.score, r.subscore, r.metadata::text, r.reached_us, r.updated_at,"
    " r.version FROM unnest($3::uuid[]) WITH ORDINALITY AS v(id, n) CROSS JOIN LATERAL"
    " (SELECT * FROM leaderboard_records WHERE board_id = $1 AND period = $2"
    " AND player_id = v.id FOR UPDATE) AS r ORDER BY v.n"
)
# The version test turns a row inserted by another process since our SELECT into a conflict
# that is not overwritten: the group is then written again, from the rows as they are.
_PG_UPSERT = (
    "INSERT INTO leaderboard_records AS r (board_id, period, player_id, score, subscore,"
    " order_score, order_subscore, metadata, reached_us, updated_at, version)"
    " SELECT v.b, v.p, v.pl, v.s, v.ss, v.os, v.oss, v.m::json, v.us, $10, v.ver"
    " FROM unnest($1::text[], $2::text[], $3::uuid[], $4::bigint[], $5::bigint[],"
    " $6::bigint[], $7::bigint[], $8::text[], $9::bigint[], $11::int[])"
    " AS v(b, p, pl, s, ss, os, oss, m, us, ver)"
    " ON CONFLICT (board_id, period, player_id) DO UPDATE SET score = excluded.score,"
    " subscore = excluded.subscore, order_score = excluded.order_score,"
    " order_subscore = excluded.order_subscore, metadata = excluded.metadata,"
    " reached_us = excluded.reached_us, updated_at = excluded.updated_at,"
    " version = excluded.version WHERE r.version = excluded.version - 1 RETURNING 1"
)
_PG_PERIODS = (
    "INSERT INTO leaderboard_periods (board_id, period, starts_at, ends_at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[])"
    " ON CONFLICT DO NOTHING"
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
Outcome = Result | HomeportError


class _Raced(Exception):
    """Another process inserted a record this group meant to insert; nothing was written."""


class _Rules:
    """Board rules by id and creation time (a board never changes; a new one with the same id
    is another board), and the periods already recorded in `leaderboard_periods`."""

    def __init__(self) -> None:
        self._rules: dict[tuple[str, Any], BoardRule] = {}
        self.known_periods: set[tuple[str, Any, str]] = set()

    def rule(self, row: Any, created_at: datetime) -> BoardRule:
        key = (row[0], row[5])
        found = self._rules.get(key)
        if found is None:
            found = BoardRule(
                row[0], Order(row[1]), Operator(row[2]), Reset(row[3]), row[4], created_at
            )
            if len(self._rules) > 10_000:
                self._rules.clear()
            self._rules[key] = found
        return found

    def new_periods(self, boards: dict[str, Any], result: Plan) -> list[tuple[Any, ...]]:
        fresh = []
        for (board_id, period_key), (_rule, period) in result.periods.items():
            marker = (board_id, boards[board_id], period_key)
            if marker not in self.known_periods:
                fresh.append((marker, period))
        return fresh


def _by_period(
    group: list[Submission], boards: dict[str, BoardRule], now: datetime
) -> dict[tuple[str, str], list[uuid.UUID]]:
    """The group's players per board and period, both in lock order (sorted)."""
    out: dict[tuple[str, str], list[uuid.UUID]] = {}
    for board_id, period, player_id in _sorted_keys(group, periods_of(group, boards, now)):
        out.setdefault((board_id, period), []).append(player_id)
    return out


def _sorted_keys(group: list[Submission], periods: dict[str, Any]) -> list[RecordKey]:
    keys = {
        (s.board_id, periods[s.board_id].key, s.player_id) for s in group if s.board_id in periods
    }
    return sorted(keys, key=lambda k: (k[0], k[1], k[2].bytes))


async def write_group_postgres(
    connection: asyncpg.Connection, clock: Clock, rules: _Rules, group: list[Submission]
) -> tuple[Plan, list[Change]]:
    now = clock.now()
    async with connection.transaction():
        rows = await connection.fetch(_PG_BOARDS, sorted({s.board_id for s in group}))
        boards = {row[0]: rules.rule(row, row[5]) for row in rows}
        created = {row[0]: row[5] for row in rows}
        players = await connection.fetch(_PG_PLAYERS, sorted({s.player_id for s in group}))
        present = {row[0] for row in players}
        current: dict[RecordKey, Stored] = {}
        for (board_id, period), players_in in _by_period(group, boards, now).items():
            found = await connection.fetch(_PG_RECORDS, board_id, period, players_in)
            for r in found:
                current[(board_id, period, r[0])] = Stored(r[1], r[2], r[3], r[4], r[5], r[6])
        result = plan(group, boards, present, current, now)
        if result.writes:
            items = list(result.writes.items())
            signs = [boards[k[0]].sign for k, _ in items]
            written = await connection.fetch(
                _PG_UPSERT,
                [k[0] for k, _ in items],
                [k[1] for k, _ in items],
                [k[2] for k, _ in items],
                [w.score for _, w in items],
                [w.subscore for _, w in items],
                [w.score * s for (_, w), s in zip(items, signs, strict=True)],
                [w.subscore * s for (_, w), s in zip(items, signs, strict=True)],
                [w.metadata for _, w in items],
                [w.reached_us for _, w in items],
                now,
                [w.version for _, w in items],
            )
            if len(written) != len(items):
                raise _Raced()
        fresh = rules.new_periods(created, result)
        if fresh:
            await connection.execute(
                _PG_PERIODS,
                [m[0] for m, _ in fresh],
                [m[2] for m, _ in fresh],
                [p.starts_at for _, p in fresh],
                [p.ends_at for _, p in fresh],
            )
        changes = result.changes(boards)
        await feed.publish_asyncpg(connection, changes)
    rules.known_periods.update(m for m, _ in fresh)
    return result, changes


class _SqliteTypes:
    """SQLAlchemy's own conversions for the values the raw SQLite statements pass."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        impl: Any = _boards_table.c.created_at.type.dialect_impl(dialect)
        self._in = impl.bind_processor(dialect)
        self._out = impl.result_processor(dialect, None)

    def time_in(self, value: datetime) -> Any:
        return self._in(value) if self._in else value

    def time_out(self, value: Any) -> datetime:
        result: datetime = self._out(value) if self._out else value
        return result


def write_group_sqlite(
    connection: Any, types: _SqliteTypes, clock: Clock, rules: _Rules, group: list[Submission]
) -> tuple[Plan, list[Change], list[tuple[str, Any, str]]]:
    """`write_group_postgres` on the raw SQLite connection, inside the caller's transaction;
    also the periods recorded, to remember once the transaction commits."""
    now = clock.now()
    cursor = connection.cursor()
    try:
        names = sorted({s.board_id for s in group})
        cursor.execute(_SQ_BOARDS.format(",".join("?" * len(names))), names)
        rows = cursor.fetchall()
        boards = {row[0]: rules.rule(row, types.time_out(row[5])) for row in rows}
        created = {row[0]: row[5] for row in rows}
        ids = sorted({s.player_id.hex for s in group})
        cursor.execute(_SQ_PLAYERS.format(",".join("?" * len(ids))), ids)
        present = {uuid.UUID(hex=row[0]) for row in cursor.fetchall()}
        current: dict[RecordKey, Stored] = {}
        for (board_id, period), ids_in in _by_period(group, boards, now).items():
            hexes = [player_id.hex for player_id in ids_in]
            marks = ",".join("?" * len(hexes))
            cursor.execute(_SQ_RECORDS.format(marks), [board_id, period, *hexes])
            for r in cursor.fetchall():
                current[(board_id, period, uuid.UUID(hex=r[0]))] = Stored(
                    r[1], r[2], r[3], r[4], types.time_out(r[5]), r[6]
                )
        result = plan(group, boards, present, current, now)
        if result.writes:
            now_text = types.time_in(now)
            params = []
            for (board_id, period, player_id), w in result.writes.items():
                sign = boards[board_id].sign
                params.append(
                    (
                        board_id,
                        period,
                        player_id.hex,
                        w.score,
                        w.subscore,
                        w.score * sign,
                        w.subscore * sign,
                        w.metadata,
                        w.reached_us,
                        now_text,
                        w.version,
                    )
                )
            cursor.executemany(_SQ_UPSERT, params)
        fresh = rules.new_periods(created, result)
        for marker, period in fresh:
            starts = None if period.starts_at is None else types.time_in(period.starts_at)
            ends = None if period.ends_at is None else types.time_in(period.ends_at)
            cursor.execute(_SQ_PERIOD, (marker[0], marker[2], starts, ends))
        changes = result.changes(boards)
        feed.publish_sqlite(cursor, changes)
    finally:
        cursor.close()
    return result, changes, [marker for marker, _ in fresh]


def _writer_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # A board's indexes outgrow SQLite's default 2 MiB page cache at some ten thousand records,
    # and every submission lands on a random page of them. A larger cache keeps them in memory,
    # and checkpointing the write-ahead log less often lets repeated writes of a page coalesce
    # (a checkpoint also waits for the disk).
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
    cursor.close()


class RecordWriter:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        clock: Clock,
        on_commit: Callable[[list[Change]], None],
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._clock = clock
        self._on_commit = on_commit
        self._rules = _Rules()
        self._pending: list[Submission] = []
        self._writer: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._thread_engine: Engine | None = None
        self._turn: SqliteWriterTurn | None = None
        self._types: _SqliteTypes | None = None

    async def submit(self, submission: Submission) -> Result:
        """The record after this submission, once committed."""
        self._pending.append(submission)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups())
        return await submission.answer

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        if self._thread_engine is not None:
            self._thread_engine.dispose()
            self._thread_engine = None
        if self._turn is not None:
            self._turn.close()
            self._turn = None

    async def _write_groups(self) -> None:
        while self._pending:
            group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            try:
                result, changes = await self._write(group)
            except Exception as exc:  # the whole group failed: each submission learns why
                for sub in group:
                    if not sub.answer.done():
                        sub.answer.set_exception(exc)
                continue
            self._on_commit(changes)
            for sub, outcome in zip(group, result.outcomes, strict=True):
                if sub.answer.done():  # the caller went away
                    continue
                if isinstance(outcome, HomeportError):
                    sub.answer.set_exception(outcome)
                else:
                    sub.answer.set_result(outcome)

    async def _write(self, group: list[Submission]) -> tuple[Plan, list[Change]]:
        if not self._settings.is_sqlite:
            async with self._engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver = cast(asyncpg.Connection, raw.driver_connection)
                for attempt in range(3):
                    try:
                        return await write_group_postgres(driver, self._clock, self._rules, group)
                    except (_Raced, asyncpg.exceptions.TransactionRollbackError):
                        # Rolled back whole: nothing was written, so trying again is safe.
                        if attempt == 2:
                            raise
            raise AssertionError("unreachable")
        if self._thread is None or self._thread_engine is None or self._turn is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="homeport-leaderboards")
            self._thread_engine = create_sqlite_thread_engine(self._settings)
            event.listen(self._thread_engine, "connect", _writer_pragmas)
            self._turn = SqliteWriterTurn(self._settings)
            self._types = _SqliteTypes(self._thread_engine)
        loop = asyncio.get_running_loop()
        engine, turn = self._thread_engine, self._turn
        return await loop.run_in_executor(self._thread, self._write_in_thread, engine, turn, group)

    def _write_in_thread(
        self, engine: Engine, turn: SqliteWriterTurn, group: list[Submission]
    ) -> tuple[Plan, list[Change]]:
        assert self._types is not None
        with turn, engine.begin() as connection:
            raw = connection.connection.dbapi_connection
            result, changes, periods = write_group_sqlite(
                raw, self._types, self._clock, self._rules, group
            )
        self._rules.known_periods.update(periods)
        return result, changes
