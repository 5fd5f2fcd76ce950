"""Hot read-only queries, run where they are cheapest for the database at hand.

Through aiosqlite every step of a query (check out, BEGIN, execute, fetch, end) is a hop to
its thread and back: a page of the server list spent three quarters of its time there. On
SQLite a `Reader` runs the whole query in one call to a worker thread instead. On PostgreSQL,
whose driver is natively async, it uses an engine of its own in autocommit mode without
pre-ping: one round trip per query instead of four (ping, BEGIN, query, ROLLBACK). A
connection that died meanwhile fails that one query (503) and is replaced.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine, Row, Select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from homeport.db.engine import READ_ONLY, create_sqlite_thread_engine
from homeport.settings import Settings

THREADS = 2


class Reader:
    def __init__(self, settings: Settings, read_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._settings = settings
        self._read_sessions = read_sessions
        self._threads: ThreadPoolExecutor | None = None
        self._engine: Engine | None = None
        self._async_engine: AsyncEngine | None = None

    async def rows(self, query: Select[Any]) -> list[Row[Any]]:
        if not self._settings.is_sqlite:
            if self._async_engine is None:
                self._async_engine = create_async_engine(
                    self._settings.database_url,
                    pool_size=self._settings.db_pool_size,
                    max_overflow=self._settings.db_pool_size,
                    isolation_level="AUTOCOMMIT",
                )
            async with self._async_engine.connect() as connection:
                return list(await connection.execute(query))
        if self._threads is None or self._engine is None:
            self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="homeport-reads")
            self._engine = create_sqlite_thread_engine(self._settings, pool_size=THREADS)
        engine = self._engine
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, _run, engine, query)

    async def close(self) -> None:
        if self._async_engine is not None:
            await self._async_engine.dispose()
            self._async_engine = None
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _run(engine: Engine, query: Select[Any]) -> list[Row[Any]]:
    with engine.connect() as connection:
        connection = connection.execution_options(**{READ_ONLY: True})
        return list(connection.execute(query))
