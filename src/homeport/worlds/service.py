"""Worlds as a whole: opening one to read or write, creating, deleting, leases by request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.errors import Forbidden
from homeport.worlds import leases
from homeport.worlds.access import Writer, check_owner
from homeport.worlds.errors import WorldNotFound
from homeport.worlds.models import Chunk, Snapshot, SnapshotChunk, World


@dataclass(frozen=True)
class WorldView:
    name: str
    owner: str
    latest_seq: int | None
    snapshots: int
    chunks: int
    stored_bytes: int
    lease_holder: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class LeaseView:
    world: str
    holder: str | None
    expires_at: datetime | None
    ttl: int


async def open_for_read(session: AsyncSession, name: str, writer: Writer) -> World:
    world = await session.get(World, name)
    if world is None:
        raise WorldNotFound()
    check_owner(world, writer)
    return world


async def open_for_write(
    session: AsyncSession, clock: Clock, name: str, writer: Writer, ttl: int
) -> World:
    """The world's row, locked, created on first use, with the caller holding its lease."""
    now = clock.now()
    world = await session.get(World, name, with_for_update=True)
    if world is None:
        world = World(name=name, owner=writer.default_owner, created_at=now, updated_at=now)
        world.next_seq = 1
        session.add(world)
        await session.flush()
    check_owner(world, writer)
    await leases.take(session, world, writer, now, ttl)
    return world


async def create_or_update(
    session: AsyncSession, clock: Clock, name: str, writer: Writer, owner: str | None
) -> tuple[World, bool]:
    """Create a world (its owner defaults to the caller's fleet or key), or change its owner,
    which only an admin may do: handing a world to another fleet moves who may load it."""
    now = clock.now()
    world = await session.get(World, name, with_for_update=True)
    if world is None:
        if owner is not None and not writer.is_admin and owner not in writer.tags:
            raise Forbidden("Only an admin key may create a world for another owner")
        chosen = writer.default_owner if owner is None else owner
        world = World(name=name, owner=chosen, created_at=now, updated_at=now)
        world.next_seq = 1
        session.add(world)
        await session.flush()
        return world, True
    check_owner(world, writer)
    if owner is not None and owner != world.owner:
        if not writer.is_admin:
            raise Forbidden("Only an admin key may change a world's owner")
        world.owner, world.updated_at = owner, now
    return world, False


async def view(session: AsyncSession, world: World) -> WorldView:
    snapshots = await session.scalar(
        select(func.count()).select_from(Snapshot).where(Snapshot.world == world.name)
    )
    chunks, stored = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Chunk.size), 0)).where(
                Chunk.world == world.name
            )
        )
    ).one()
    return WorldView(
        name=world.name,
        owner=world.owner,
        latest_seq=world.latest_seq,
        snapshots=int(snapshots or 0),
        chunks=int(chunks),
        stored_bytes=int(stored),
        lease_holder=leases.lease_holder(world),
        lease_expires_at=world.lease_expires_at,
        created_at=world.created_at,
        updated_at=world.updated_at,
    )


async def list_worlds(session: AsyncSession, after: str | None, limit: int) -> list[World]:
    query = select(World).order_by(World.name).limit(limit)
    if after is not None:
        query = query.where(World.name > after)
    return list(await session.scalars(query))


async def take_lease(
    session: AsyncSession, clock: Clock, name: str, writer: Writer, ttl: int
) -> LeaseView:
    world = await open_for_write(session, clock, name, writer, ttl)
    return LeaseView(world.name, leases.lease_holder(world), world.lease_expires_at, ttl)


async def release_lease(session: AsyncSession, clock: Clock, name: str, writer: Writer) -> None:
    """The holder gives its lease back (a server shutting down); an admin may take it away
    from a holder that cannot (hung, partitioned)."""
    world = await session.get(World, name, with_for_update=True)
    if world is None:
        raise WorldNotFound()
    check_owner(world, writer)
    if world.lease_key_id is None:
        return
    if not writer.holds(world) and not writer.is_admin:
        leases.raise_leased(world, clock.now())
    leases.release(world)


async def delete_world(session: AsyncSession, name: str) -> list[str]:
    """Delete a world and everything it saved; the object keys to remove from storage."""
    world = await session.get(World, name, with_for_update=True)
    if world is None:
        raise WorldNotFound()
    keys = list(await session.scalars(select(Chunk.object_key).where(Chunk.world == name)))
    # What snapshots name goes first: the cascades from the world row run in no fixed order,
    # and a chunk row must never go while a snapshot still names it.
    await session.execute(delete(SnapshotChunk).where(SnapshotChunk.world == name))
    await session.delete(world)
    await session.flush()
    return keys
