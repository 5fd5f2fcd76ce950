"""Matches as their players and servers see them, and their results."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.errors import UnprocessableContent
from homeport.matchmaking import ratings
from homeport.matchmaking.errors import (
    MatchNotFound,
    MatchNotPlayable,
    NotMatchServer,
    ResultAlreadyRecorded,
)
from homeport.matchmaking.models import Match, Queue
from homeport.matchmaking.queues import QueueSpec
from homeport.players.access import DataCaller
from homeport.settings import Settings
from homeport.timefmt import rfc3339


def out(row: Match) -> dict[str, Any]:
    server = None
    if row.server_id is not None and row.port is not None:
        server = {"id": str(row.server_id), "address": row.address, "port": row.port}
    return {
        "id": str(row.id),
        "queue": row.queue,
        "state": row.state,
        "teams": row.teams,
        "region": row.region,
        "server": server,
        "created_at": rfc3339(row.created_at),
        "allocated_at": None if row.allocated_at is None else rfc3339(row.allocated_at),
        "completed_at": None if row.completed_at is None else rfc3339(row.completed_at),
        "result": row.result,
    }


def _is_staff(caller: DataCaller) -> bool:
    key = caller.key
    return key is not None and (key.is_admin or "matchmaking" in key.scopes)


def _is_its_server(caller: DataCaller, row: Match) -> bool:
    key = caller.key
    return key is not None and row.server_id is not None and key.server_id == row.server_id


async def visible(session: AsyncSession, match_id: uuid.UUID, caller: DataCaller) -> Match:
    row = await session.get(Match, match_id)
    if row is None:
        raise MatchNotFound()
    player = None if caller.player_id is None else str(caller.player_id)
    if player is not None and any(player in team for team in row.teams):
        return row
    if _is_staff(caller) or _is_its_server(caller, row):
        return row
    raise MatchNotFound()  # not "forbidden": whether a match exists is not everyone's business


async def record_result(
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    match_id: uuid.UUID,
    caller: DataCaller,
    ranks: list[int],
) -> Match:
    row = await session.get(Match, match_id, with_for_update=True)
    if row is None:
        raise MatchNotFound()
    if caller.key is None or not (_is_staff(caller) or _is_its_server(caller, row)):
        raise NotMatchServer()
    if row.result is not None:
        raise ResultAlreadyRecorded()
    if row.state != "allocated":
        raise MatchNotPlayable()
    if len(ranks) != len(row.teams):
        raise UnprocessableContent(
            errors=[
                {
                    "loc": ["body", "ranks"],
                    "msg": f"Give one place per team ({len(row.teams)})",
                    "type": "length",
                }
            ]
        )
    stored = await session.get(Queue, row.queue)
    pool = row.queue if stored is None else QueueSpec.model_validate(stored.spec).pool(row.queue)
    updated = await ratings.apply_result(session, clock, settings, pool, row.teams, ranks)
    row.result = {"ranks": ranks, "ratings": updated, "pool": pool}
    row.state, row.completed_at = "completed", clock.now()
    return row
