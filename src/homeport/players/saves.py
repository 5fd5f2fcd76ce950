"""Whole-document saves (`PUT`), written in groups (see `homeport.db.groups`).

Dedicated servers save players at every level-up, disconnect and interval: the one hot write
of player data. Each save keeps the rules of `players.documents` — the player's write turn
(their account row locked, in id order across the group), the version check, the per-player
quota — but a group of saves costs a few statements, whatever its size. Saves of the same
player in one group apply in arrival order, each against the state the previous one left.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from homeport.clock import Clock
from homeport.db.groups import GroupWriter, SqliteColumns, sqlite_cursor
from homeport.errors import HomeportError
from homeport.players.documents import Written
from homeport.players.errors import PlayerDataFull, PlayerNotFound, VersionConflict
from homeport.players.models import PlayerDocument
from homeport.settings import Settings

Name = tuple[uuid.UUID, str, str]
_POSTGRES_LOCK = "SELECT id FROM accounts WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"
_POSTGRES_DOCUMENTS = (
    "SELECT account_id, collection, key, version, size FROM player_documents"
    " WHERE account_id = ANY($1::uuid[])"
)
_POSTGRES_UPSERT = (
    "INSERT INTO player_documents"
    " (account_id, collection, key, value, version, size, created_at, updated_at)"
    " SELECT a, c, k, v::json, n, s, $7, $7"
    " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[])"
    " AS w(a, c, k, v, n, s)"
    " ON CONFLICT (account_id, collection, key) DO UPDATE SET value = excluded.value,"
    " version = excluded.version, size = excluded.size, updated_at = excluded.updated_at"
)
_SQLITE_LOCK = "SELECT id FROM accounts WHERE id IN ({marks})"
_SQLITE_DOCUMENTS = (
    "SELECT account_id, collection, key, version, size FROM player_documents"
    " WHERE account_id IN ({marks})"
)
_SQLITE_UPSERT = (
    "INSERT INTO player_documents"
    " (account_id, collection, key, value, version, size, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (account_id, collection, key) DO UPDATE SET value = excluded.value,"
    " version = excluded.version, size = excluded.size, updated_at = excluded.updated_at"
)


@dataclass(frozen=True, slots=True)
class Save:
    """A checked save: the document is valid JSON within the size limit, the caller may
    write it, and a version is given unless the collection allows none."""

    player_id: uuid.UUID
    collection: str
    key: str
    value: dict[str, Any]
    text: str
    """`value` as compact JSON, as stored."""
    size: int
    """Its length in bytes (UTF-8), which the quotas count."""
    version: int | None


@dataclass(slots=True)
class _Stored:
    version: int
    size: int


@dataclass(slots=True)
class Plan:
    """What a group does: each save's outcome, and each document's final state."""

    outcomes: list[Written | HomeportError] = field(default_factory=list)
    final: dict[Name, tuple[Save, int]] = field(default_factory=dict)


def decide(
    saves: list[Save],
    players: set[uuid.UUID],
    stored: dict[Name, _Stored],
    max_bytes: int,
    now: datetime,
) -> Plan:
    """Apply the saves in order to what is stored (no I/O here)."""
    totals: dict[uuid.UUID, int] = {}
    for (player, _, _), row in stored.items():
        totals[player] = totals.get(player, 0) + row.size
    plan = Plan()
    for save in saves:
        if save.player_id not in players:
            plan.outcomes.append(PlayerNotFound())
            continue
        name = (save.player_id, save.collection, save.key)
        current = stored.get(name)
        version = current.version if current is not None else 0
        if save.version is not None and save.version != version:
            plan.outcomes.append(VersionConflict(current_version=version))
            continue
        size = save.size
        total = totals.get(save.player_id, 0) - (current.size if current else 0) + size
        if total > max_bytes:
            plan.outcomes.append(
                PlayerDataFull(
                    f"The player's documents would take {total} bytes; the limit is {max_bytes}",
                    max_bytes=max_bytes,
                )
            )
            continue
        totals[save.player_id] = total
        stored[name] = _Stored(version + 1, size)
        plan.final[name] = (save, version + 1)
        plan.outcomes.append(Written(save.collection, save.key, version + 1, now, save.value))
    return plan


class DocumentSaves(GroupWriter[Save, Written]):
    thread_name = "homeport-document-saves"

    def __init__(self, settings: Settings, engine: AsyncEngine, clock: Clock) -> None:
        super().__init__(settings, engine)
        self._clock = clock
        self._columns: SqliteColumns | None = None

    def prepare_sqlite(self, engine: Engine) -> None:
        self._columns = SqliteColumns(engine, PlayerDocument.__table__)

    async def write_postgres(
        self, connection: asyncpg.Connection, items: list[Save]
    ) -> list[Written | HomeportError]:
        now = self._clock.now()
        ids = sorted({save.player_id for save in items})
        players = {row[0] for row in await connection.fetch(_POSTGRES_LOCK, ids)}
        stored = {
            (row[0], row[1], row[2]): _Stored(row[3], row[4])
            for row in await connection.fetch(_POSTGRES_DOCUMENTS, ids)
        }
        plan = decide(items, players, stored, self._settings.players_player_max_bytes, now)
        if plan.final:
            rows = list(plan.final.values())
            await connection.execute(
                _POSTGRES_UPSERT,
                [save.player_id for save, _ in rows],
                [save.collection for save, _ in rows],
                [save.key for save, _ in rows],
                [save.text for save, _ in rows],
                [version for _, version in rows],
                [save.size for save, _ in rows],
                now,
            )
        return plan.outcomes

    def write_sqlite(
        self, connection: Connection, items: list[Save]
    ) -> list[Written | HomeportError]:
        columns = self._columns
        assert columns is not None
        id_in, id_out = columns.bind("account_id"), columns.read("account_id")
        time_in = columns.bind("updated_at")
        now = self._clock.now()
        ids = list({save.player_id for save in items})
        marks = ",".join("?" * len(ids))
        cursor = sqlite_cursor(connection)
        try:
            cursor.execute(_SQLITE_LOCK.format(marks=marks), [id_in(i) for i in ids])
            players = {id_out(row[0]) for row in cursor.fetchall()}
            cursor.execute(_SQLITE_DOCUMENTS.format(marks=marks), [id_in(i) for i in ids])
            stored = {
                (id_out(row[0]), row[1], row[2]): _Stored(row[3], row[4])
                for row in cursor.fetchall()
            }
            plan = decide(items, players, stored, self._settings.players_player_max_bytes, now)
            stamp = time_in(now)
            cursor.executemany(
                _SQLITE_UPSERT,
                [
                    (
                        id_in(save.player_id),
                        save.collection,
                        save.key,
                        save.text,
                        version,
                        save.size,
                        stamp,
                        stamp,
                    )
                    for save, version in plan.final.values()
                ],
            )
        finally:
            cursor.close()
        return plan.outcomes
