"""The change feed: committed record changes, from every process to every process's rank index.

A writer publishes, inside the transaction that made them, the new standing key and version of
each record it changed (and, when a board is deleted, that its records are gone). PostgreSQL
carries them by NOTIFY, delivered on commit and never on rollback; each process listens on a
connection of its own, and when that connection is lost it drops its indexes, which are rebuilt
from the records on the next read. SQLite has one writer at a time, so the rows of
`leaderboard_changes` get ids in commit order, and each process reads the rows past the last id
it saw; a process that fell behind the rows kept drops its indexes in the same way.

Changes carry versions, so applying one twice or after a newer one changes nothing: the order in
which a process hears of its own writes and other processes' writes does not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.leaderboards.models import LeaderboardChange
from homeport.settings import Settings

CHANNEL = "homeport_leaderboards"
MAX_PAYLOAD = 7800
"""PostgreSQL refuses NOTIFY payloads of 8000 bytes or more."""
KEEP_ROWS = 20_000
PRUNE_EVERY = 500
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
CONNECT_TIMEOUT = 5.0
PING_EVERY = 30.0
log = logging.getLogger("homeport.leaderboards")
_PRUNE = "DELETE FROM leaderboard_changes WHERE id <= ?"


@dataclass(frozen=True, slots=True)
class Change:
    """A record's standing as committed; `key` None means all of the board's records are gone."""

    board_id: str
    period: str
    key: int | None
    version: int


def encode(changes: Iterable[Change]) -> list[str]:
    """Payloads of at most MAX_PAYLOAD bytes: `[board, period, [key hex…], [version…]]` each."""
    payloads: list[str] = []
    groups: dict[tuple[str, str], tuple[list[str], list[int]]] = {}
    resets: list[str] = []
    for change in changes:
        if change.key is None:
            resets.append(change.board_id)
            continue
        keys, versions = groups.setdefault((change.board_id, change.period), ([], []))
        keys.append(format(change.key, "x"))
        versions.append(change.version)
    for board_id in resets:
        payloads.append(orjson.dumps([[board_id, None, [], []]]).decode())
    for (board_id, period), (keys, versions) in groups.items():
        overhead = len(board_id) + len(period) + 24
        start = 0
        size = overhead
        for i, key in enumerate(keys):
            size += len(key) + 12
            if size > MAX_PAYLOAD and i > start:
                part = [[board_id, period, keys[start:i], versions[start:i]]]
                payloads.append(orjson.dumps(part).decode())
                start, size = i, overhead + len(key) + 12
        part = [[board_id, period, keys[start:], versions[start:]]]
        payloads.append(orjson.dumps(part).decode())
    return payloads


def decode(payload: str | bytes) -> list[Change]:
    changes: list[Change] = []
    for board_id, period, keys, versions in orjson.loads(payload):
        if period is None:
            changes.append(Change(board_id, "", None, 0))
            continue
        for key, version in zip(keys, versions, strict=True):
            changes.append(Change(board_id, period, int(key, 16), int(version)))
    return changes


def publish_sqlite(cursor: Any, changes: list[Change]) -> None:
    """Append the changes to `leaderboard_changes` on a raw SQLite cursor in a transaction."""
    for payload in encode(changes):
        cursor.execute("INSERT INTO leaderboard_changes (data) VALUES (?)", (payload,))
        newest = cursor.lastrowid
        if newest % PRUNE_EVERY == 0:
            cursor.execute(_PRUNE, (newest - KEEP_ROWS,))


async def publish(session: AsyncSession, changes: list[Change]) -> None:
    """`publish_*` for a unit of work (board deletions, which the CLI makes too)."""
    dialect = session.get_bind().dialect.name
    for payload in encode(changes):
        if dialect == "postgresql":
            await session.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": CHANNEL, "payload": payload},
            )
        else:
            session.add(LeaderboardChange(data=payload))
    await session.flush()


class PostgresListener:
    """LISTEN on a connection of this process's own; `on_lost` runs whenever changes may have
    been missed (the connection failed or came back)."""

    def __init__(
        self,
        settings: Settings,
        on_changes: Callable[[list[Change]], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._dsn = make_url(settings.database_url).set(drivername="postgresql")
        self._on_changes = on_changes
        self._on_lost = on_lost
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._listening = asyncio.Event()

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    async def start(self) -> None:
        """Start listening (once); returns when LISTEN is in place or the first attempt failed.

        Every caller waits, not only the first: a rank index built before LISTEN is in place
        is dropped when it is (changes made meanwhile were not heard), so building one sooner
        would only be work thrown away."""
        if self._task is None or self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._run(self._ready), name="homeport-leaderboards")
        if not self._ready.done():
            await asyncio.wait({self._ready, self._task}, return_when=asyncio.FIRST_COMPLETED)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            changes = decode(payload)
        except Exception:
            log.warning("a malformed leaderboard change; rebuilding the rank indexes")
            self._on_lost()
            return
        self._on_changes(changes)

    async def _run(self, ready: asyncio.Future[None]) -> None:
        failures = 0
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    self._dsn.render_as_string(hide_password=False),
                    timeout=CONNECT_TIMEOUT,
                    server_settings={"application_name": "homeport-leaderboards"},
                )
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._notified)
                # Anything committed while nobody listened is unknown: start again from the rows.
                self._on_lost()
                self._listening.set()
                failures = 0
                if not ready.done():
                    ready.set_result(None)
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), PING_EVERY)
                    except TimeoutError:
                        await connection.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT)
                log.warning("lost the leaderboard changes connection; reconnecting")
            except Exception:
                if failures == 0:
                    log.warning("leaderboard changes connection failed; retrying", exc_info=True)
                if not ready.done():
                    ready.set_result(None)
            finally:
                self._listening.clear()
                self._on_lost()
                if connection is not None:
                    connection.terminate()
            failures += 1
            await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS)) - 1])


def read_sqlite_changes(connection: Any, after_id: int, limit: int) -> list[tuple[int, str]]:
    """Rows of `leaderboard_changes` past `after_id` on a raw SQLite connection (a thread)."""
    cursor = connection.cursor()
    try:
        cursor.execute(
            "SELECT id, data FROM leaderboard_changes WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [(int(row[0]), str(row[1])) for row in cursor.fetchall()]
    finally:
        cursor.close()


def newest_sqlite_change(connection: Any) -> int:
    cursor = connection.cursor()
    try:
        cursor.execute("SELECT max(id) FROM leaderboard_changes")
        row = cursor.fetchone()
        return int(row[0] or 0)
    finally:
        cursor.close()
