"""Heartbeats, written in groups (see `homeport.db.groups`): one transaction for every beat
that arrived meanwhile, so tens of thousands of servers beating every 30 s cost hundreds of
transactions a second, not thousands."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from homeport.clock import Clock
from homeport.db.groups import GroupWriter, SqliteColumns, sqlite_cursor
from homeport.errors import HomeportError, UnprocessableContent
from homeport.events.bus import record, record_asyncpg
from homeport.identity.service_keys import Caller
from homeport.registry.errors import NotServerOwner, ServerNotRegistered
from homeport.registry.models import Server
from homeport.registry.schemas import HeartbeatRequest
from homeport.registry.service import TOPIC, Lease
from homeport.settings import Settings

_SQLITE_SELECT = (
    "SELECT id, key_id, max_players, players, state, directive FROM servers"
    " WHERE lease_expires_at > ? AND id IN ({marks})"
)
_SQLITE_UPDATE = (
    "UPDATE servers SET players = ?, map = coalesce(?, map), state = ?,"
    " player_ids = coalesce(?, player_ids), heartbeat_at = ?, lease_expires_at = ? WHERE id = ?"
)
_POSTGRES_SELECT = (
    "SELECT id, key_id, max_players, players, state, directive FROM servers"
    " WHERE id = ANY($1::uuid[]) AND lease_expires_at > $2 ORDER BY id FOR UPDATE"
)
_POSTGRES_UPDATE = (
    "UPDATE servers AS s SET players = v.players, map = coalesce(v.map, s.map),"
    " state = v.state, player_ids = coalesce(v.player_ids::json, s.player_ids),"
    " heartbeat_at = $6, lease_expires_at = $7"
    " FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[])"
    " AS v(id, players, map, state, player_ids) WHERE s.id = v.id"
)


@dataclass(frozen=True, slots=True)
class Renewed:
    expires_at: datetime
    directive: dict[str, Any] | None
    """What the fleet asks of the server (see `Server.directive`), handed over as it is."""


@dataclass(frozen=True, slots=True)
class _Lease:
    """Stands for "the new lease" in `decide`'s outcomes; the writer fills in the time."""

    directive: dict[str, Any] | None


Outcome = Renewed | HomeportError


@dataclass(frozen=True, slots=True)
class _Beat:
    server_id: uuid.UUID
    caller: Caller
    body: HeartbeatRequest


@dataclass(slots=True)
class _Current:
    key_id: uuid.UUID
    max_players: int
    players: int
    state: str
    directive: dict[str, Any] | None = None


@dataclass(slots=True)
class _Next:
    """A server's values once the group's beats for it are applied in order (None: unchanged)."""

    max_players: int
    players: int
    state: str
    old_state: str
    map: str | None = None
    player_ids: list[str] | None = None


def _too_many_players(players: int, max_players: int) -> UnprocessableContent:
    return UnprocessableContent(
        errors=[
            {
                "loc": ["body", "players"],
                "msg": f"Must not exceed the server's max_players ({max_players})",
                "type": "less_than_equal",
            }
        ]
    )


def _apply(body: HeartbeatRequest, target: _Next) -> HomeportError | None:
    players = target.players if body.players is None else body.players
    if players > target.max_players:
        return _too_many_players(players, target.max_players)
    target.players = players
    if body.map is not None:
        target.map = body.map
    if body.state is not None:
        target.state = body.state.value
    if body.player_ids is not None:
        target.player_ids = list(dict.fromkeys(str(p) for p in body.player_ids))
    return None


def decide(
    group: list[_Beat], current: dict[uuid.UUID, _Current]
) -> tuple[list[_Lease | HomeportError], dict[uuid.UUID, _Next]]:
    """Each beat's outcome, in order, and what to write for each server (no I/O here)."""
    changes: dict[uuid.UUID, _Next] = {}
    outcomes: list[_Lease | HomeportError] = []
    for beat in group:
        row = current.get(beat.server_id)
        if row is None:
            outcomes.append(ServerNotRegistered())
            continue
        if row.key_id != beat.caller.key_id and not beat.caller.is_admin:
            outcomes.append(NotServerOwner())
            continue
        target = changes.get(beat.server_id) or _Next(
            row.max_players, row.players, row.state, row.state
        )
        refusal = _apply(beat.body, target)
        if refusal is not None:
            outcomes.append(refusal)
            continue
        if target.state == "ready" and (row.directive or {}).get("allocation"):
            # Allocated: out of the browser's ready servers, even before the server itself
            # has heard of its allocation (it learns it in this beat's answer).
            target.state = "in_match"
        changes[beat.server_id] = target
        outcomes.append(_Lease(row.directive))
    return outcomes, changes


def _record_state_changes(session: Session, clock: Clock, changes: dict[uuid.UUID, _Next]) -> None:
    for server_id, target in changes.items():
        if target.state != target.old_state:
            record(
                session,
                clock,
                topic=TOPIC,
                kind="server.state_changed",
                subject=str(server_id),
                data={"from": target.old_state, "to": target.state, "players": target.players},
            )


async def write_group_postgres(
    connection: asyncpg.Connection, clock: Clock, lease: Lease, group: list[_Beat]
) -> list[Outcome]:
    """Apply a group of beats inside the caller's transaction on a raw asyncpg connection:
    a few round trips and no per-row statements, whatever the group's size."""
    now = clock.now()
    expires = lease.expiry(now)
    ids = sorted({beat.server_id for beat in group})
    # FOR UPDATE in id order: every process locks rows in the same order, so concurrent
    # groups cannot deadlock.
    rows = await connection.fetch(_POSTGRES_SELECT, ids, now)
    current = {row[0]: _Current(row[1], row[2], row[3], row[4], _json(row[5])) for row in rows}
    outcomes, changes = decide(group, current)
    if changes:
        targets = list(changes.items())
        await connection.execute(
            _POSTGRES_UPDATE,
            [server_id for server_id, _ in targets],
            [t.players for _, t in targets],
            [t.map for _, t in targets],
            [t.state for _, t in targets],
            [
                None if t.player_ids is None else orjson.dumps(t.player_ids).decode()
                for _, t in targets
            ],
            now,
            expires,
        )
    for server_id, target in changes.items():
        if target.state != target.old_state:
            await record_asyncpg(
                connection,
                clock,
                topic=TOPIC,
                kind="server.state_changed",
                subject=str(server_id),
                data={"from": target.old_state, "to": target.state, "players": target.players},
            )
    return _renewals(outcomes, expires)


class _SqliteTypes:
    """SQLAlchemy's own conversions for the columns the raw SQLite statements touch."""

    def __init__(self, engine: Engine) -> None:
        columns = SqliteColumns(engine, Server.__table__)
        self.id_in = columns.bind("id")
        self.id_out = columns.read("id")
        self.time_in = columns.bind("heartbeat_at")
        self.json_in = columns.bind("player_ids")


def write_group_sqlite(
    connection: Connection, types: _SqliteTypes, clock: Clock, lease: Lease, group: list[_Beat]
) -> list[Outcome]:
    """`write_group` on the raw SQLite connection: a third of the CPU per beat, which is the
    time the database's one write lock is held (see the module docstring)."""
    now = clock.now()
    expires = lease.expiry(now)
    ids = sorted({beat.server_id for beat in group})
    cursor = sqlite_cursor(connection)
    try:
        cursor.execute(
            _SQLITE_SELECT.format(marks=",".join("?" * len(ids))),
            [types.time_in(now), *(types.id_in(i) for i in ids)],
        )
        current = {
            types.id_out(row[0]): _Current(
                types.id_out(row[1]), row[2], row[3], row[4], _json(row[5])
            )
            for row in cursor.fetchall()
        }
        outcomes, changes = decide(group, current)
        if changes:
            now_text, expires_text = types.time_in(now), types.time_in(expires)
            cursor.executemany(
                _SQLITE_UPDATE,
                [
                    (
                        target.players,
                        target.map,
                        target.state,
                        None if target.player_ids is None else types.json_in(target.player_ids),
                        now_text,
                        expires_text,
                        types.id_in(server_id),
                    )
                    for server_id, target in changes.items()
                ],
            )
    finally:
        cursor.close()
    if any(t.state != t.old_state for t in changes.values()):
        with Session(bind=connection) as session:
            _record_state_changes(session, clock, changes)
    return _renewals(outcomes, expires)


def _json(value: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """A JSON column as a raw connection gives it: text, or already decoded by a codec."""
    if value is None or isinstance(value, dict):
        return value
    return orjson.loads(value)  # type: ignore[no-any-return]


def _renewals(outcomes: list[_Lease | HomeportError], expires: datetime) -> list[Outcome]:
    return [
        Renewed(expires, outcome.directive) if isinstance(outcome, _Lease) else outcome
        for outcome in outcomes
    ]


class HeartbeatWriter(GroupWriter[_Beat, Renewed]):
    thread_name = "homeport-heartbeats"

    def __init__(self, settings: Settings, engine: AsyncEngine, clock: Clock, lease: Lease) -> None:
        super().__init__(settings, engine)
        self._clock = clock
        self._lease = lease
        self._types: _SqliteTypes | None = None

    async def beat(self, caller: Caller, server_id: uuid.UUID, body: HeartbeatRequest) -> Renewed:
        """Refresh the server's lease and apply the update; the new lease, once committed."""
        return await self.submit(_Beat(server_id, caller, body))

    def prepare_sqlite(self, engine: Engine) -> None:
        self._types = _SqliteTypes(engine)

    async def write_postgres(
        self, connection: asyncpg.Connection, items: list[_Beat]
    ) -> list[Outcome]:
        return await write_group_postgres(connection, self._clock, self._lease, items)

    def write_sqlite(self, connection: Connection, items: list[_Beat]) -> list[Outcome]:
        assert self._types is not None
        return write_group_sqlite(connection, self._types, self._clock, self._lease, items)
