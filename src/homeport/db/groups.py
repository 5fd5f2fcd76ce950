"""Group commit: many small writes that arrive together, committed in one transaction.

A hot write path (heartbeats, player saves) gets thousands of tiny writes a second. One
transaction each would spend its time in BEGIN/COMMIT and, on SQLite, queue on the one write
lock. Instead each write joins the next group; one task writes the group in one transaction and
only then answers every write in it, each with its own outcome. A 2xx therefore still means
"committed", and a busy process writes bigger groups rather than more transactions.

On PostgreSQL a group runs on a raw asyncpg connection (a few statements whatever its size);
on SQLite it runs whole in one worker thread, so the write lock, shared with every other
process, is held for the statements only, never while the event loop serves other requests.

Groups are written one at a time, so a writer needs one PostgreSQL connection at most. By default
it takes one from the engine's pool for each group, which checks it with a round trip of its own
(`pool_pre_ping`, a transaction around `;`); a writer whose groups are small and frequent can keep
one connection of its own instead (`own_connection`), replaced when it is found closed.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar, cast

import asyncpg
from sqlalchemy import Connection, Engine, Table
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from homeport.db.engine import SqliteWriterTurn, create_sqlite_thread_engine
from homeport.errors import HomeportError
from homeport.settings import Settings

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_GROUP = 900
"""Writes per transaction: SQLite builds before 3.32 take at most 999 bound values a statement."""
log = logging.getLogger("homeport.db")


class SqliteColumns:
    """SQLAlchemy's own conversions of a table's columns, for raw SQLite statements: values
    are stored exactly as the ORM stores them, so both paths read each other's rows."""

    def __init__(self, engine: Engine, table: Any) -> None:
        self._dialect = engine.dialect
        self._columns = cast(Table, table).c

    def bind(self, name: str) -> Any:
        kind = self._columns[name].type.dialect_impl(self._dialect)
        return kind.bind_processor(self._dialect) or (lambda value: value)

    def read(self, name: str) -> Any:
        kind = self._columns[name].type.dialect_impl(self._dialect)
        return kind.result_processor(self._dialect, None) or (lambda value: value)


def sqlite_cursor(connection: Connection) -> Any:
    """The DB-API cursor under a SQLAlchemy connection: no per-statement overhead."""
    return connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


class GroupWriter(ABC, Generic[Item, Result]):
    """Queue items, write them in groups, answer each with its `Result` or its refusal.

    Subclasses write a group: `write_postgres` on an asyncpg connection inside a transaction,
    `write_sqlite` on a connection inside `BEGIN IMMEDIATE`. Each returns one outcome per item,
    in order: a result, or the `HomeportError` that refused that item alone. An exception
    fails the whole group (nothing of it was written) and every item learns why.

    On PostgreSQL a `TransactionRollbackError` (a deadlock, a serialization failure, or a
    subclass's own way of saying the group must be read again) rolls the group back whole, and
    it is written again, up to `attempts` times in all.
    """

    thread_name = "homeport-group-writes"
    attempts = 2
    own_connection = False
    """On PostgreSQL, keep one connection of the writer's own (see the module docstring)."""

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self._settings = settings
        self._engine = engine
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._thread_engine: Engine | None = None
        self._turn: SqliteWriterTurn | None = None
        self._connection: asyncpg.Connection | None = None

    @abstractmethod
    async def write_postgres(
        self, connection: asyncpg.Connection, items: list[Item]
    ) -> list[Result | HomeportError]:
        """Write the group inside the open transaction; one outcome per item, in order."""

    @abstractmethod
    def write_sqlite(
        self, connection: Connection, items: list[Item]
    ) -> list[Result | HomeportError]:
        """Write the group inside `BEGIN IMMEDIATE`; one outcome per item, in order."""

    def prepare_sqlite(self, engine: Engine) -> None:
        """Called once, before the first SQLite group, with the writer thread's engine."""

    def committed(self, items: list[Item], outcomes: list[Result | HomeportError]) -> None:
        """Called on the event loop once a group has committed, before any item is answered:
        for what may follow a commit only, such as telling the rest of the process."""

    async def submit(self, item: Item) -> Result:
        """Write `item` with the next group; its result once committed, or its refusal."""
        answer: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, answer))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups())
        return await answer

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
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                await connection.close(timeout=5)
            except Exception:  # the server went first: nothing is left to close politely
                connection.terminate()

    async def _write_groups(self) -> None:
        while self._pending:
            group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            items = [item for item, _ in group]
            try:
                outcomes = await self._write(items)
            except Exception as exc:  # the whole group failed: each item learns why
                for _, answer in group:
                    if not answer.done():
                        answer.set_exception(exc)
                continue
            try:
                self.committed(items, outcomes)
            except Exception:  # the group is committed all the same: answer it
                log.exception("%s: after a committed group", self.thread_name)
            for (_, answer), outcome in zip(group, outcomes, strict=True):
                if answer.done():  # the caller went away
                    continue
                if isinstance(outcome, HomeportError):
                    answer.set_exception(outcome)
                else:
                    answer.set_result(outcome)

    async def _write(self, items: list[Item]) -> list[Result | HomeportError]:
        if not self._settings.is_sqlite:
            if self.own_connection:
                driver = await self._own_connection()
                try:
                    return await self._postgres_attempts(driver, items)
                except Exception:
                    if driver.is_in_transaction():  # the rollback failed: start afresh
                        driver.terminate()
                    raise
            async with self._engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver = cast(asyncpg.Connection, raw.driver_connection)
                return await self._postgres_attempts(driver, items)
        if self._thread is None or self._thread_engine is None or self._turn is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix=self.thread_name)
            self._thread_engine = create_sqlite_thread_engine(self._settings)
            self._turn = SqliteWriterTurn(self._settings)
            self.prepare_sqlite(self._thread_engine)
        loop = asyncio.get_running_loop()
        engine, turn = self._thread_engine, self._turn
        return await loop.run_in_executor(
            self._thread, self._sqlite_transaction, engine, turn, items
        )

    async def _own_connection(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            if self._connection is not None:
                self._connection.terminate()
            dsn = make_url(self._settings.database_url).set(drivername="postgresql")
            self._connection = await asyncpg.connect(
                dsn.render_as_string(hide_password=False),
                server_settings={"application_name": self.thread_name},
            )
        return self._connection

    async def _postgres_attempts(
        self, driver: asyncpg.Connection, items: list[Item]
    ) -> list[Result | HomeportError]:
        for _ in range(self.attempts - 1):
            try:
                return await self._postgres_transaction(driver, items)
            except asyncpg.exceptions.TransactionRollbackError:
                # Rolled back whole: nothing of the group was written, so writing it again is
                # safe (the last attempt's failure answers 503).
                continue
        return await self._postgres_transaction(driver, items)

    async def _postgres_transaction(
        self, driver: asyncpg.Connection, items: list[Item]
    ) -> list[Result | HomeportError]:
        async with driver.transaction():
            return await self.write_postgres(driver, items)

    def _sqlite_transaction(
        self, engine: Engine, turn: SqliteWriterTurn, items: list[Item]
    ) -> list[Result | HomeportError]:
        with turn, engine.begin() as connection:
            return self.write_sqlite(connection, items)
