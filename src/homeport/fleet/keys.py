"""Each fleet server's own API key: made when it starts, bound to its id, revoked when it ends.

A key per server (not one per fleet) means a leaked key dies with its server, and the registry
can tell which server a request comes from without trusting anything the server says.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.fleet.models import GameServer
from homeport.fleet.spec import ENDED_STATES, FleetSpec
from homeport.identity.auth_events import EventKind, record
from homeport.identity.models import ServerKey
from homeport.identity.server_keys import KeyKind
from homeport.identity.service_keys import create_key

PURGE_BATCH = 500


def key_name(server_id: uuid.UUID) -> str:
    return f"fleet:{server_id}"


async def issue_key(session: AsyncSession, clock: Clock, row: GameServer, spec: FleetSpec) -> str:
    created = await create_key(
        session,
        clock,
        name=key_name(row.id),
        kind=KeyKind.SERVER,
        scopes=frozenset(spec.key_scopes),
        server_id=row.id,
    )
    row.key_id = created.row.id
    return created.key


async def revoke_keys(session: AsyncSession, clock: Clock, key_ids: list[uuid.UUID]) -> None:
    if not key_ids:
        return
    now = clock.now()
    for key in await session.scalars(select(ServerKey).where(ServerKey.id.in_(key_ids))):
        if key.revoked_at is None:
            key.revoked_at = now
            record(session, clock, EventKind.KEY, key.lookup)  # every process drops its cache


async def purge_ended(session: AsyncSession, clock: Clock, retention: int) -> int:
    """Forget servers that ended longer ago than the retention, with their keys."""
    cutoff = clock.now() - timedelta(seconds=retention)
    rows = (
        await session.execute(
            select(GameServer.id, GameServer.key_id)
            .where(
                GameServer.state.in_([s.value for s in ENDED_STATES]),
                GameServer.ended_at < cutoff,
            )
            .limit(PURGE_BATCH)
        )
    ).all()
    if not rows:
        return 0
    await session.execute(delete(GameServer).where(GameServer.id.in_([r[0] for r in rows])))
    keys = [r[1] for r in rows if r[1] is not None]
    if keys:
        await session.execute(delete(ServerKey).where(ServerKey.id.in_(keys)))
    return len(rows)
