"""The documents `POST /v1/validate` hands a server with the player, read in groups.

Every player connect of every server is a validate, and each now reads the player's spawn
collections. One read per validate would cost a worker-thread hop (SQLite) or a pooled round
trip (PostgreSQL) each; instead the validates waiting at the same moment share one query for
all their players, as writes share a transaction in `homeport.db.groups`. The documents are
passed through as their stored JSON text (`orjson.Fragment`), never parsed and re-encoded.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import asyncpg
import orjson
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from homeport.db.engine import create_sqlite_thread_engine
from homeport.db.groups import MAX_GROUP, SqliteColumns, sqlite_cursor
from homeport.players.models import PlayerDocument
from homeport.settings import Settings

Data = dict[str, dict[str, Any]]
_POSTGRES = (
    "SELECT account_id, collection, key, value::text, version FROM player_documents"
    " WHERE account_id = ANY($1::uuid[]) AND collection = ANY($2::text[])"
    " AND deleted_at IS NULL"
)
_SQLITE = (
    "SELECT account_id, collection, key, value, version FROM player_documents"
    " WHERE account_id IN ({players}) AND collection IN ({collections})"
    " AND deleted_at IS NULL"
)


class SpawnReader:
    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self._settings = settings
        self._engine = engine
        self._collections = list(dict.fromkeys(settings.players_validate_collections))
        self._pending: list[tuple[uuid.UUID, asyncio.Future[Data]]] = []
        self._reader: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._thread_engine: Engine | None = None
        self._columns: SqliteColumns | None = None

    async def data(self, player_id: uuid.UUID) -> Data:
        """`{collection: {key: {"value": …, "version": n}}}`, every spawn collection present."""
        if not self._collections:
            return {}
        answer: asyncio.Future[Data] = asyncio.get_running_loop().create_future()
        self._pending.append((player_id, answer))
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_groups())
        return await answer

    async def close(self) -> None:
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        if self._thread_engine is not None:
            self._thread_engine.dispose()
            self._thread_engine = None

    async def _read_groups(self) -> None:
        while self._pending:
            group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            ids = list({player_id for player_id, _ in group})
            try:
                rows = await self._read(ids)
            except Exception as exc:  # each validate of the group learns why
                for _, answer in group:
                    if not answer.done():
                        answer.set_exception(exc)
                continue
            found: dict[uuid.UUID, Data] = {}
            for player_id, collection, key, text, version in rows:
                data = found.setdefault(player_id, {name: {} for name in self._collections})
                data[collection][key] = {"value": orjson.Fragment(text), "version": version}
            for player_id, answer in group:
                if not answer.done():
                    empty: Data = {name: {} for name in self._collections}
                    answer.set_result(found.get(player_id, empty))

    async def _read(self, ids: list[uuid.UUID]) -> list[Any]:
        if not self._settings.is_sqlite:
            async with self._engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver = cast(asyncpg.Connection, raw.driver_connection)
                return list(await driver.fetch(_POSTGRES, ids, self._collections))
        if self._thread is None or self._thread_engine is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="homeport-spawn-reads")
            self._thread_engine = create_sqlite_thread_engine(self._settings)
            self._columns = SqliteColumns(self._thread_engine, PlayerDocument.__table__)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._read_sqlite, self._thread_engine, ids)

    def _read_sqlite(self, engine: Engine, ids: list[uuid.UUID]) -> list[Any]:
        columns = self._columns
        assert columns is not None
        id_in, id_out = columns.bind("account_id"), columns.read("account_id")
        sql = _SQLITE.format(
            players=",".join("?" * len(ids)), collections=",".join("?" * len(self._collections))
        )
        with engine.connect() as connection:
            cursor = sqlite_cursor(connection)
            try:
                cursor.execute(sql, [*(id_in(i) for i in ids), *self._collections])
                return [(id_out(r[0]), r[1], r[2], r[3], r[4]) for r in cursor.fetchall()]
            finally:
                cursor.close()
