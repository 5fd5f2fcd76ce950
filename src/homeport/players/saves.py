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
from homeport.players.errors import PlayerNotFound, VersionConflict
from homeport.players.models import PlayerDocument
from homeport.players.quota import Quota, Usage
from homeport.settings import Settings

Name = tuple[uuid.UUID, str, str]
# NO KEY UPDATE: serialises the players' data writers (as `documents.lock_player` does)
# without blocking inserts that merely reference the accounts.
_POSTGRES_LOCK = "SELECT id FROM accounts WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE"
_POSTGRES_USAGE = (
    "SELECT account_id, collection, sum(size), count(*) FROM player_documents"
    " WHERE account_id = ANY($1::uuid[]) AND deleted_at IS NULL GROUP BY account_id, collection"
)
_POSTGRES_DOCUMENTS = (
    "SELECT d.account_id, d.collection, d.key, d.version, d.size, d.deleted_at IS NOT NULL"
    " FROM player_documents AS d"
    " JOIN unnest($1::uuid[], $2::text[], $3::text[]) AS w(a, c, k)"
    " ON d.account_id = w.a AND d.collection = w.c AND d.key = w.k"
)
_POSTGRES_UPSERT = (
    "INSERT INTO player_documents"
    " (account_id, collection, key, value, version, size, created_at, updated_at)"
    " SELECT a, c, k, v::json, n, s, $7, $7"
    " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[])"
    " AS w(a, c, k, v, n, s)"
    " ON CONFLICT (account_id, collection, key) DO UPDATE SET value = excluded.value,"
    " version = excluded.version, size = excluded.size, updated_at = excluded.updated_at,"
    " deleted_at = NULL"
)
_SQLITE_LOCK = "SELECT id FROM accounts WHERE id IN ({marks})"
_SQLITE_USAGE = (
    "SELECT account_id, collection, sum(size), count(*) FROM player_documents"
    " WHERE account_id IN ({marks}) AND deleted_at IS NULL GROUP BY account_id, collection"
)
_SQLITE_DOCUMENTS = (
    "SELECT account_id, collection, key, version, size, deleted_at IS NOT NULL"
    " FROM player_documents"
    " WHERE (account_id, collection, key) IN (VALUES {triples})"
)
_SQLITE_CHUNK = 300
"""Documents named per SQLite statement: 3 values each, under old builds' 999 a statement."""
_SQLITE_UPSERT = (
    "INSERT INTO player_documents"
    " (account_id, collection, key, value, version, size, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (account_id, collection, key) DO UPDATE SET value = excluded.value,"
    " version = excluded.version, size = excluded.size, updated_at = excluded.updated_at,"
    " deleted_at = NULL"
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
    """What it counts against the quotas (see `quota.charged`)."""
    version: int | None


@dataclass(slots=True)
class _Stored:
    version: int
    size: int
    deleted: bool = False
    """A tombstone: absent to writers (version 0) but its version goes on."""


@dataclass(slots=True)
class Plan:
    """What a group does: each save's outcome, and each document's final state."""

    outcomes: list[Written | HomeportError] = field(default_factory=list)
    final: dict[Name, tuple[Save, int]] = field(default_factory=dict)


def decide(
    saves: list[Save],
    players: set[uuid.UUID],
    stored: dict[Name, _Stored],
    usage: dict[uuid.UUID, Usage],
    quota: Quota,
    now: datetime,
) -> Plan:
    """Apply the saves in order to what is stored (no I/O here). `stored` holds the named
    documents that exist; `usage` what each player's documents take."""
    plan = Plan()
    for save in saves:
        if save.player_id not in players:
            plan.outcomes.append(PlayerNotFound())
            continue
        name = (save.player_id, save.collection, save.key)
        row = stored.get(name)
        live = row if row is not None and not row.deleted else None
        if save.version is not None and save.version != (live.version if live else 0):
            plan.outcomes.append(VersionConflict(current_version=live.version if live else 0))
            continue
        before = usage.get(save.player_id, Usage())
        grown = save.size - (live.size if live is not None else 0)
        after = quota.change(before, save.collection, grown, 0 if live else 1)
        refusal = quota.refusal(before, after)
        if refusal is not None:
            plan.outcomes.append(refusal)
            continue
        version = (row.version if row is not None else 0) + 1  # on past a tombstone
        usage[save.player_id] = after
        stored[name] = _Stored(version, save.size)
        plan.final[name] = (save, version)
        plan.outcomes.append(Written(save.collection, save.key, version, now, save.value))
    return plan


class DocumentSaves(GroupWriter[Save, Written]):
    thread_name = "homeport-document-saves"

    def __init__(self, settings: Settings, engine: AsyncEngine, clock: Clock) -> None:
        super().__init__(settings, engine)
        self._clock = clock
        self._quota = Quota(settings)
        self._columns: SqliteColumns | None = None

    def prepare_sqlite(self, engine: Engine) -> None:
        self._columns = SqliteColumns(engine, PlayerDocument.__table__)

    async def write_postgres(
        self, connection: asyncpg.Connection, items: list[Save]
    ) -> list[Written | HomeportError]:
        now = self._clock.now()
        ids = sorted({save.player_id for save in items})
        players = {row[0] for row in await connection.fetch(_POSTGRES_LOCK, ids)}
        usage = self._quota.of_rows(await connection.fetch(_POSTGRES_USAGE, ids))
        names = list({(s.player_id, s.collection, s.key) for s in items})
        rows = await connection.fetch(
            _POSTGRES_DOCUMENTS,
            [name[0] for name in names],
            [name[1] for name in names],
            [name[2] for name in names],
        )
        stored = {(row[0], row[1], row[2]): _Stored(row[3], row[4], row[5]) for row in rows}
        plan = decide(items, players, stored, usage, self._quota, now)
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
            cursor.execute(_SQLITE_USAGE.format(marks=marks), [id_in(i) for i in ids])
            usage = self._quota.of_rows(
                (id_out(row[0]), row[1], row[2], row[3]) for row in cursor.fetchall()
            )
            names = list({(s.player_id, s.collection, s.key) for s in items})
            stored: dict[Name, _Stored] = {}
            for start in range(0, len(names), _SQLITE_CHUNK):
                chunk = names[start : start + _SQLITE_CHUNK]
                triples = ",".join("(?, ?, ?)" for _ in chunk)
                values = [v for p, c, k in chunk for v in (id_in(p), c, k)]
                cursor.execute(_SQLITE_DOCUMENTS.format(triples=triples), values)
                for row in cursor.fetchall():
                    stored[(id_out(row[0]), row[1], row[2])] = _Stored(row[3], row[4], bool(row[5]))
            plan = decide(items, players, stored, usage, self._quota, now)
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
