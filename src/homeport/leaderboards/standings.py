"""Each process's rank indexes, one per board and period that was read, kept in step with the
database by the change feed (see `feed`).

An index is built from the records on first use, in a worker thread, while the changes that
arrive meanwhile wait to be replayed on it; versions make the replay safe whatever it repeats.
Indexes are rebuilt every REBUILD_SECONDS in the background, which bounds how long a removal
that bypasses the feed (an account erased, its records deleted by the database's cascade)
keeps counting in the ranks. At most MAX_INDEXES are kept, the least recently read going first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from homeport.clock import Clock
from homeport.db.engine import READ_ONLY, create_sqlite_thread_engine
from homeport.leaderboards import feed
from homeport.leaderboards.feed import Change
from homeport.leaderboards.ranks import RankIndex, standing_key
from homeport.settings import Settings

MAX_INDEXES = 16
REBUILD_SECONDS = 300.0
POLL_SECONDS = 0.05
"""On SQLite, how stale a read may be about other processes' changes."""
POLL_BATCH = 5_000
_PLAYER_MASK = (1 << 128) - 1
_LOAD = (
    "SELECT order_score, order_subscore, reached_us, player_id, version FROM leaderboard_records"
    " WHERE board_id = {0} AND period = {1}"
    " ORDER BY order_score, order_subscore, reached_us, player_id"
)
log = logging.getLogger("homeport.leaderboards")


@dataclass
class _Slot:
    index: RankIndex | None = None
    pending: list[Change] | None = None
    """Changes heard while a build is under way, to replay on the new index."""
    loading: asyncio.Task[RankIndex] | None = None
    built_at: float = 0.0
    keep: bool = True


def _index_postgres(rows: list[Any]) -> RankIndex:
    entries = []
    for order_score, order_subscore, reached_us, player_id, version in rows:
        player = player_id.int
        key = standing_key(order_score, order_subscore, reached_us, player)
        entries.append((key, player, version))
    return RankIndex(entries)


def _load_sqlite(engine: Engine, board_id: str, period: str) -> RankIndex:
    with engine.connect() as connection:
        connection = connection.execution_options(**{READ_ONLY: True})
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            cursor.execute(_LOAD.format("?", "?"), (board_id, period))
            entries = []
            for order_score, order_subscore, reached_us, player_hex, version in cursor.fetchall():
                player = int(player_hex, 16)
                key = standing_key(order_score, order_subscore, reached_us, player)
                entries.append((key, player, version))
        finally:
            cursor.close()
    return RankIndex(entries)


@dataclass
class Standings:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    on_feed: Callable[[list[Change]], None]
    """Where the feed's changes go (the context, which passes them on to `apply`)."""
    _slots: OrderedDict[tuple[str, str], _Slot] = field(default_factory=OrderedDict)
    _listener: feed.PostgresListener | None = None
    _thread: ThreadPoolExecutor | None = None
    _thread_engine: Engine | None = None
    _last_change: int | None = None
    _polled_at: float = float("-inf")
    _polling: asyncio.Lock = field(default_factory=asyncio.Lock)

    def apply(self, changes: list[Change]) -> None:
        """Bring the loaded indexes up to these committed changes."""
        for change in changes:
            if change.key is None:
                self.forget_board(change.board_id)
                continue
            slot = self._slots.get((change.board_id, change.period))
            if slot is None:
                continue
            if slot.index is not None:
                slot.index.apply(change.key & _PLAYER_MASK, change.key, change.version)
            if slot.pending is not None:
                slot.pending.append(change)

    def forget_board(self, board_id: str) -> None:
        for key in [key for key in self._slots if key[0] == board_id]:
            del self._slots[key]

    def forget_all(self) -> None:
        self._slots.clear()

    async def index(self, board_id: str, period: str) -> RankIndex:
        """The rank index of a board's period, current up to the feed."""
        await self._follow_feed()
        key = (board_id, period)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
            while len(self._slots) > MAX_INDEXES:
                self._slots.popitem(last=False)
        self._slots.move_to_end(key)
        stale = self.clock.monotonic() - slot.built_at > REBUILD_SECONDS
        if slot.loading is None and (slot.index is None or stale):
            slot.loading = asyncio.create_task(self._build(slot, board_id, period))
            slot.loading.add_done_callback(_log_failure)
        if slot.index is not None:
            return slot.index
        assert slot.loading is not None
        index = await asyncio.shield(slot.loading)
        if not self._following():
            # Without the feed an index cannot be kept current: use it for this read only.
            self._slots.pop(key, None)
        return index

    def _following(self) -> bool:
        return self.settings.is_sqlite or (self._listener is not None and self._listener.listening)

    async def _build(self, slot: _Slot, board_id: str, period: str) -> RankIndex:
        slot.pending = []
        try:
            if self.settings.is_sqlite:
                engine, thread = self._sqlite()
                loop = asyncio.get_running_loop()
                index = await loop.run_in_executor(thread, _load_sqlite, engine, board_id, period)
            else:
                index = await self._load_postgres(board_id, period)
            for change in slot.pending:
                assert change.key is not None
                index.apply(change.key & _PLAYER_MASK, change.key, change.version)
            slot.index = index
            slot.built_at = self.clock.monotonic()
            return index
        finally:
            slot.pending = None
            slot.loading = None

    async def _load_postgres(self, board_id: str, period: str) -> RankIndex:
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = cast(asyncpg.Connection, raw.driver_connection)
            rows = await driver.fetch(_LOAD.format("$1", "$2"), board_id, period)
        loop = asyncio.get_running_loop()
        # Packing 100,000 keys and indexing them is some 100 ms of CPU: not on the event loop.
        return await loop.run_in_executor(None, _index_postgres, rows)

    async def _follow_feed(self) -> None:
        if not self.settings.is_sqlite:
            if self._listener is None:
                self._listener = feed.PostgresListener(self.settings, self.on_feed, self.forget_all)
            await self._listener.start()
            return
        if (
            self.clock.monotonic() - self._polled_at < POLL_SECONDS
            and self._last_change is not None
        ):
            return
        async with self._polling:
            if self.clock.monotonic() - self._polled_at < POLL_SECONDS:
                return
            engine, thread = self._sqlite()
            loop = asyncio.get_running_loop()
            if self._last_change is None:
                self._last_change = await loop.run_in_executor(thread, _newest, engine)
            while True:
                after = self._last_change
                rows = await loop.run_in_executor(thread, _read_changes, engine, after)
                if rows and rows[0][0] != after + 1:
                    log.info("fell behind the leaderboard changes; rebuilding rank indexes")
                    self.forget_all()
                for row_id, payload in rows:
                    self.on_feed(feed.decode(payload))
                    self._last_change = row_id
                if len(rows) < POLL_BATCH:
                    break
            self._polled_at = self.clock.monotonic()

    def _sqlite(self) -> tuple[Engine, ThreadPoolExecutor]:
        if self._thread is None or self._thread_engine is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="homeport-ranks")
            self._thread_engine = create_sqlite_thread_engine(self.settings)
        return self._thread_engine, self._thread

    async def close(self) -> None:
        for slot in list(self._slots.values()):
            if slot.loading is not None:
                slot.loading.cancel()
                with contextlib.suppress(BaseException):
                    await slot.loading
        self._slots.clear()
        if self._listener is not None:
            await self._listener.close()
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        if self._thread_engine is not None:
            self._thread_engine.dispose()
            self._thread_engine = None


def _log_failure(task: asyncio.Task[RankIndex]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("building a rank index failed", exc_info=task.exception())


def _newest(engine: Engine) -> int:
    connection = engine.raw_connection()
    try:
        return feed.newest_sqlite_change(connection)
    finally:
        connection.close()


def _read_changes(engine: Engine, after: int) -> list[tuple[int, str]]:
    connection = engine.raw_connection()
    try:
        return feed.read_sqlite_changes(connection, after, POLL_BATCH)
    finally:
        connection.close()
