"""Async engine and session factory for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from homeport.settings import Settings


def _sqlite_pragmas(dbapi_connection: Any, synchronous: str) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes a second writer wait
    # instead of failing at once; foreign keys are off by default in SQLite. `synchronous`:
    # NORMAL keeps every commit through a crash of Homeport, FULL also through power loss, at
    # the cost of an fsync per commit (settings.db_sqlite_synchronous).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


READ_ONLY = "homeport_read_only"


def _sqlite_connect(dbapi_connection: Any, synchronous: str) -> None:
    _sqlite_pragmas(dbapi_connection, synchronous)
    # Take over BEGIN from the driver so that write transactions can ask for the write lock up
    # front: a deferred transaction that reads and then writes can fail with SQLITE_BUSY at once,
    # whatever busy_timeout says, when another connection wrote in between.
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=settings.db_pool_size, max_overflow=0)
        synchronous = settings.db_sqlite_synchronous
        event.listen(
            engine.sync_engine, "connect", lambda conn, _rec: _sqlite_connect(conn, synchronous)
        )
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
    )


def create_sessionmaker(
    engine: AsyncEngine, *, read_only: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions for one unit of work; `read_only` ones never take SQLite's write lock."""
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)
