"""One player's record, read the cheapest way each database allows: a raw asyncpg query on
PostgreSQL, a raw query in a worker thread on SQLite (through aiosqlite each step of a query is
a hop to its thread and back). This is the read behind every rank lookup."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import orjson
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from homeport.db.engine import create_sqlite_thread_engine
from homeport.leaderboards.ranks import standing_key
from homeport.leaderboards.submissions import EPOCH
from homeport.settings import Settings
from homeport.timefmt import rfc3339

THREADS = 2
POOL_SIZE = 4
"""PostgreSQL connections of a process's own for lookups: the shared pool checks each connection
with a round trip when it is taken (`pool_pre_ping`), which would double a lookup's cost.

All of them are opened with the pool and kept: asyncpg's defaults would open them as concurrency
grows, close idle ones after 5 minutes and replace each after 50,000 queries, and the lookup that
waits for a new connection (a new server process, its caches cold) stalls for up to hundreds of
milliseconds. Nor is a connection reset when it goes back (a round trip per lookup): a lookup is
one read outside any transaction and changes nothing in the session."""
_SQL = (
    "SELECT a.display_name, r.score, r.subscore, r.metadata{cast}, r.reached_us, r.updated_at,"
    " r.order_score, r.order_subscore FROM leaderboard_records AS r"
    " JOIN accounts AS a ON a.id = r.player_id"
    " WHERE r.board_id = {0} AND r.period = {1} AND r.player_id = {2}"
)
_POSTGRES = _SQL.format("$1", "$2", "$3", cast="::text")
_SQLITE = _SQL.format("?", "?", "?", cast="")


class PlayerRow:
    __slots__ = ("display_name", "metadata", "order", "player_id", "reached_us", "score")

    def __init__(self, player_id: uuid.UUID, row: Any, updated_at: datetime) -> None:
        self.player_id = player_id
        self.display_name: str = row[0]
        self.score: tuple[int, int, datetime] = (row[1], row[2], updated_at)
        self.metadata: str = row[3]
        self.reached_us: int = row[4]
        self.order: tuple[int, int] = (row[6], row[7])

    @property
    def key(self) -> int:
        return standing_key(self.order[0], self.order[1], self.reached_us, self.player_id.int)

    def render(self, rank: int) -> bytes:
        score, subscore, updated_at = self.score
        return orjson.dumps(
            {
                "rank": rank,
                "player_id": str(self.player_id),
                "display_name": self.display_name,
                "score": score,
                "subscore": subscore,
                "metadata": orjson.Fragment(self.metadata),
                "reached_at": rfc3339(EPOCH + timedelta(microseconds=self.reached_us)),
                "updated_at": rfc3339(updated_at),
            }
        )


def _sqlite_row(engine: Engine, board_id: str, period: str, player_id: uuid.UUID) -> Any:
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(_SQLITE, (board_id, period, player_id.hex))
        row = cursor.fetchone()
        cursor.close()
        return row
    finally:
        connection.close()


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """The pool's reset: nothing to undo (see POOL_SIZE)."""


class Lookups:
    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self._settings = settings
        self._engine = engine
        self._threads: ThreadPoolExecutor | None = None
        self._thread_engine: Engine | None = None
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def player(self, board_id: str, period: str, player_id: uuid.UUID) -> PlayerRow | None:
        if not self._settings.is_sqlite:
            pool = self._pool or await self._open_pool()
            found = await pool.fetchrow(_POSTGRES, board_id, period, player_id)
            return None if found is None else PlayerRow(player_id, found, found[5])
        if self._threads is None or self._thread_engine is None:
            self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="homeport-lookups")
            self._thread_engine = create_sqlite_thread_engine(self._settings, pool_size=THREADS)
        loop = asyncio.get_running_loop()
        engine = self._thread_engine
        found = await loop.run_in_executor(
            self._threads, _sqlite_row, engine, board_id, period, player_id
        )
        if found is None:
            return None
        updated_at = datetime.fromisoformat(found[5]).replace(tzinfo=UTC)
        return PlayerRow(player_id, found, updated_at)

    async def _open_pool(self) -> asyncpg.Pool:
        async with self._opening:  # the first lookups arrive together: one pool for them all
            if self._pool is None:
                dsn = make_url(self._settings.database_url).set(drivername="postgresql")
                self._pool = await asyncpg.create_pool(
                    dsn.render_as_string(hide_password=False),
                    min_size=POOL_SIZE,
                    max_size=POOL_SIZE,
                    max_queries=float("inf"),
                    max_inactive_connection_lifetime=0,
                    reset=_keep_session,
                    server_settings={"application_name": "homeport-lookups"},
                )
            return cast(asyncpg.Pool, self._pool)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None
        if self._thread_engine is not None:
            self._thread_engine.dispose()
            self._thread_engine = None
