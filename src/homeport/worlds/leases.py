"""One writer per world: the write lease.

A lease is taken by a save (or asked for), renewed by every write, and lasts `worlds_lease_ttl`
past the last one; it also lasts while its holder's registry entry is live, so a server that
heartbeats keeps its world between saves and loses it when it stops heartbeating (crashed,
deregistered), or at once when its fleet saw it end. Callers lock the world row first, so two
servers cannot both take a free lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.fleet.models import GameServer
from homeport.fleet.spec import ENDED_STATES
from homeport.registry.models import Server
from homeport.worlds.access import Writer
from homeport.worlds.errors import WorldLeased
from homeport.worlds.models import World

ENDED = [state.value for state in ENDED_STATES]


async def alive(session: AsyncSession, world: World, now: datetime) -> bool:
    if world.lease_key_id is None:
        return False
    if world.lease_server_id is not None:
        # A fleet server the agent saw end (crashed, stopped) holds nothing: its replacement
        # loads the world at once instead of waiting for the lease to run out.
        ended = await session.scalar(
            select(GameServer.id).where(
                GameServer.id == world.lease_server_id, GameServer.state.in_(ENDED)
            )
        )
        if ended is not None:
            return False
    if world.lease_expires_at is not None and world.lease_expires_at > now:
        return True
    live = select(Server.id).where(Server.lease_expires_at > now).limit(1)
    if world.lease_server_id is not None:
        live = live.where(Server.id == world.lease_server_id)
    else:
        live = live.where(Server.key_id == world.lease_key_id)
    return await session.scalar(live) is not None


async def take(
    session: AsyncSession, world: World, writer: Writer, now: datetime, ttl: int
) -> bool:
    """Take or renew the lease of a locked world row; True when the row changed."""
    expires = now + timedelta(seconds=ttl)
    if writer.holds(world):
        # Renew only once half the lease has gone: most writes then change nothing here.
        if world.lease_expires_at is None or world.lease_expires_at - now < timedelta(
            seconds=ttl / 2
        ):
            world.lease_expires_at = expires
            return True
        return False
    if await alive(session, world, now):
        raise_leased(world, now)
    world.lease_key_id, world.lease_server_id = writer.key_id, writer.server_id
    world.lease_expires_at = expires
    return True


def raise_leased(world: World, now: datetime) -> None:
    left = 5
    if world.lease_expires_at is not None and world.lease_expires_at > now:
        left = max(1, int((world.lease_expires_at - now).total_seconds()) + 1)
    raise WorldLeased(
        holder=lease_holder(world),
        expires_at=world.lease_expires_at.isoformat() if world.lease_expires_at else None,
        retry_after=left,
    )


def lease_holder(world: World) -> str | None:
    if world.lease_key_id is None:
        return None
    if world.lease_server_id is not None:
        return f"server:{world.lease_server_id}"
    return f"key:{world.lease_key_id}"


def release(world: World) -> None:
    world.lease_key_id = world.lease_server_id = world.lease_expires_at = None
