"""Which registry entry is an Agones GameServer: the one registered at its address and port.

Agones starts the servers with a shared key, so Homeport cannot bind an id to each one as it
does for local servers. A game server under Agones registers with the address and port its
GameServer gives players (the SDK tells it; the reference server does so), and that pair is
what an allocation answers: matching them makes the allocation's `server_id` the registry id,
so a match's join tickets, the heartbeat's allocation and the browser all name one server.
A GameServer with no live entry there keeps an id derived from its name.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.registry.models import Server

Place = tuple[str, int]


async def registered_ids(
    session: AsyncSession, clock: Clock | None, places: list[Place]
) -> dict[Place, uuid.UUID]:
    """The registry entry at each address and port (the latest to beat, if several); only
    live ones with a clock to tell, any not purged yet without (a listing)."""
    if not places:
        return {}
    query = (
        select(Server.id, Server.address, Server.port)
        .where(
            Server.address.in_({address for address, _ in places}),
            Server.port.in_({port for _, port in places}),
        )
        .order_by(Server.heartbeat_at)
    )
    if clock is not None:
        query = query.where(Server.lease_expires_at > clock.now())
    rows = await session.execute(query)
    wanted = set(places)
    return {(a, p): server_id for server_id, a, p in rows.all() if (a, p) in wanted}


async def hand_over(
    session: AsyncSession, clock: Clock, place: Place, allocation: dict[str, Any]
) -> uuid.UUID | None:
    """Put the allocation where the server's next heartbeat answer finds it, as for a local
    server; the registry id, or None when nothing is registered there."""
    server_id = (await registered_ids(session, clock, [place])).get(place)
    if server_id is not None:
        await session.execute(
            update(Server)
            .where(Server.id == server_id)
            .values(directive={"allocation": allocation}, state="in_match")
        )
    return server_id
