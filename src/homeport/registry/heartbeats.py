"""Heartbeats, written in groups: one transaction for every beat that arrived meanwhile.

Tens of thousands of servers beating every 30 s is thousands of writes a second. One
transaction per beat would spend its time in BEGIN/COMMIT (and, on SQLite, queue on the one
write lock). Instead each beat joins the next group; a single task writes the group in one
transaction and only then answers every beat in it. A 2xx therefore still means "committed",
and a busy process writes bigger groups rather than more transactions.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.db.session import unit_of_work
from homeport.errors import HomeportError, UnprocessableContent
from homeport.events.bus import emit
from homeport.identity.service_keys import Caller
from homeport.registry.errors import NotServerOwner, ServerNotRegistered
from homeport.registry.models import Server
from homeport.registry.schemas import HeartbeatRequest
from homeport.registry.service import TOPIC, Lease

MAX_GROUP = 1000
_servers = cast(Table, Server.__table__)
_UPDATE = (
    update(_servers)
    .where(_servers.c.id == bindparam("b_id"))
    .values(
        players=bindparam("b_players"),
        map=bindparam("b_map"),
        state=bindparam("b_state"),
        player_ids=bindparam("b_player_ids"),
        heartbeat_at=bindparam("b_now"),
        lease_expires_at=bindparam("b_expires"),
    )
)


@dataclass(slots=True)
class _Beat:
    server_id: uuid.UUID
    caller: Caller
    body: HeartbeatRequest
    answer: asyncio.Future[datetime] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(slots=True)
class _Next:
    """The values a server will have once the group's beats for it are applied, in order."""

    max_players: int
    players: int
    map: str
    state: str
    player_ids: list[str]
    old_state: str


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


class HeartbeatWriter:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, lease: Lease
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._lease = lease
        self._pending: list[_Beat] = []
        self._writer: asyncio.Task[None] | None = None

    async def beat(self, caller: Caller, server_id: uuid.UUID, body: HeartbeatRequest) -> datetime:
        """Refresh the server's lease and apply the update; the new lease expiry, once committed."""
        beat = _Beat(server_id, caller, body)
        self._pending.append(beat)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups())
        return await beat.answer

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _write_groups(self) -> None:
        while self._pending:
            group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            try:
                outcomes = await self._write(group)
            except Exception as exc:  # the whole group failed: each beat learns why
                for beat in group:
                    if not beat.answer.done():
                        beat.answer.set_exception(exc)
                continue
            for beat, outcome in zip(group, outcomes, strict=True):
                if beat.answer.done():  # the caller went away
                    continue
                if isinstance(outcome, HomeportError):
                    beat.answer.set_exception(outcome)
                else:
                    beat.answer.set_result(outcome)

    async def _write(self, group: list[_Beat]) -> list[datetime | HomeportError]:
        now = self._clock.now()
        expires = self._lease.expiry(now)
        ids = sorted({beat.server_id for beat in group})
        async with unit_of_work(self._sessions) as session:
            result = await session.execute(
                select(
                    _servers.c.id,
                    _servers.c.key_id,
                    _servers.c.max_players,
                    _servers.c.players,
                    _servers.c.map,
                    _servers.c.state,
                    _servers.c.player_ids,
                ).where(_servers.c.id.in_(ids), _servers.c.lease_expires_at > now)
            )
            rows = {row.id: row for row in result}
            owners = {row.id: row.key_id for row in rows.values()}
            changes: dict[uuid.UUID, _Next] = {}
            outcomes: list[datetime | HomeportError] = []
            for beat in group:
                row = rows.get(beat.server_id)
                if row is None:
                    outcomes.append(ServerNotRegistered())
                    continue
                if owners[row.id] != beat.caller.key_id and not beat.caller.is_admin:
                    outcomes.append(NotServerOwner())
                    continue
                current = changes.get(row.id) or _Next(
                    row.max_players, row.players, row.map, row.state, row.player_ids, row.state
                )
                outcome = self._apply(beat.body, current)
                if outcome is None:
                    changes[row.id] = current
                    outcomes.append(expires)
                else:
                    outcomes.append(outcome)
            if changes:
                await session.execute(
                    _UPDATE, [self._params(i, n, now, expires) for i, n in changes.items()]
                )
                await self._record_state_changes(session, changes)
        return outcomes

    @staticmethod
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

    @staticmethod
    def _params(
        server_id: uuid.UUID, target: _Next, now: datetime, expires: datetime
    ) -> dict[str, Any]:
        return {
            "b_id": server_id,
            "b_players": target.players,
            "b_map": target.map,
            "b_state": target.state,
            "b_player_ids": target.player_ids,
            "b_now": now,
            "b_expires": expires,
        }

    async def _record_state_changes(
        self, session: AsyncSession, changes: dict[uuid.UUID, _Next]
    ) -> None:
        for server_id, target in changes.items():
            if target.state != target.old_state:
                await emit(
                    session,
                    self._clock,
                    topic=TOPIC,
                    kind="server.state_changed",
                    subject=str(server_id),
                    data={"from": target.old_state, "to": target.state, "players": target.players},
                )
