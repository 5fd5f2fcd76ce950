"""Async engine and session factory for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import fcntl
import os
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from homeport.settings import Settings


def _sqlite_pragmas(dbapi_connection: Any, settings: Settings) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes a second writer wait
    # instead of failing at once; foreign keys are off by default in SQLite. `synchronous`:
    # NORMAL keeps every commit through a crash of Homeport, FULL also through power loss, at
    # the cost of an fsync per commit (settings.db_sqlite_synchronous).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={settings.db_sqlite_synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={round(settings.db_sqlite_busy_timeout * 1000)}")
    cursor.close()


READ_ONLY = "homeport_read_only"


def _sqlite_connect(dbapi_connection: Any, settings: Settings) -> None:
    _sqlite_pragmas(dbapi_connection, settings)
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
        event.listen(
            engine.sync_engine, "connect", lambda conn, _rec: _sqlite_connect(conn, settings)
        )
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
    )


def create_sqlite_thread_engine(settings: Settings, *, pool_size: int = 1) -> Engine:
    """A synchronous engine on the same SQLite file, for work confined to one thread.

    An async transaction returns to the event loop between statements, and on SQLite it holds
    the database's one write lock meanwhile, while the loop serves other requests. A hot write
    path runs its whole transaction in a worker thread on this engine instead, so the lock is
    held for the statements alone.
    """
    assert settings.is_sqlite
    url = settings.database_url.replace("sqlite+aiosqlite://", "sqlite://", 1)
    engine = create_sync_engine(
        url, pool_size=pool_size, max_overflow=0, connect_args={"check_same_thread": False}
    )
    event.listen(engine, "connect", lambda conn, _rec: _sqlite_connect(conn, settings))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


class SqliteWriterTurn:
    """A turn at SQLite's write lock, handed over by the kernel the moment it is free.

    SQLite makes a writer that finds the lock taken sleep and retry (1, 2, 5, 10 ms and more),
    so two processes writing all the time lose much of each second asleep. Hot writers in
    different processes queue on an `flock` instead, which wakes the next one at once. Blocking:
    call it from a worker thread.
    """

    def __init__(self, settings: Settings) -> None:
        self._fd = self._open(settings.database_url)

    @classmethod
    def for_url(cls, url: str) -> SqliteWriterTurn:
        turn = cls.__new__(cls)
        turn._fd = cls._open(url)
        return turn

    @staticmethod
    def _open(url: str) -> int:
        database = make_url(url).database or "homeport.db"
        return os.open(f"{database}.writer.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


def create_sessionmaker(
    engine: AsyncEngine, *, read_only: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions for one unit of work; `read_only` ones never take SQLite's write lock."""
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)
