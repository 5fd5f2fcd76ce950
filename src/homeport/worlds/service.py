"""Worlds as a whole: opening one to read or write, creating, deleting, leases by request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.errors import Forbidden
from homeport.worlds import leases
from homeport.worlds.access import Writer, check_owner
from homeport.worlds.errors import WorldNotFound
from homeport.worlds.models import Chunk, DoomedObject, Snapshot, SnapshotChunk, World


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


async def _locked(
    session: AsyncSession, name: str, owner: str, now: datetime
) -> tuple[World, bool]:
    """The world's row, locked, inserted first if there is none; (row, whether inserted).

    Two servers of a fleet often start together and save the same new world at once; a plain
    insert would fail the second one on the key. `ON CONFLICT DO NOTHING` lets it wait for
    the first insert and then lock the row like any later caller."""
    world = await session.get(World, name, with_for_update=True)
    if world is not None:
        return world, False
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    values = {"name": name, "owner": owner, "next_seq": 1, "created_at": now, "updated_at": now}
    result = await session.execute(
        insert(World).values(**values).on_conflict_do_nothing(index_elements=["name"])
    )
    world = await session.get(World, name, with_for_update=True, populate_existing=True)
    assert world is not None  # inserted now, or by the caller whose insert this one waited on
    return world, bool(getattr(result, "rowcount", 0) == 1)


async def open_for_write(
    session: AsyncSession, clock: Clock, name: str, writer: Writer, ttl: int
) -> World:
    """The world's row, locked, created on first use, with the caller holding its lease."""
    now = clock.now()
    world, _ = await _locked(session, name, writer.default_owner, now)
    check_owner(world, writer)
    await leases.take(session, world, writer, now, ttl)
    return world


async def create_or_update(
    session: AsyncSession, clock: Clock, name: str, writer: Writer, owner: str | None
) -> tuple[World, bool]:
    """Create a world (its owner defaults to the caller's fleet or key), or change its owner,
    which only an admin may do: handing a world to another fleet moves who may load it."""
    now = clock.now()
    if owner is not None and not writer.is_admin and owner not in writer.tags:
        raise Forbidden("Only an admin key may create a world for another owner")
    chosen = writer.default_owner if owner is None else owner
    world, created = await _locked(session, name, chosen, now)
    if created:
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
    # A lapsed lease is nobody's: giving it back is a no-op, not a conflict.
    others = not writer.holds(world) and not writer.is_admin
    if others and await leases.alive(session, world, clock.now()):
        leases.raise_leased(world, clock.now())
    leases.release(world)


async def delete_world(session: AsyncSession, clock: Clock, name: str) -> None:
    """Delete a world and everything it saved; its objects are doomed, for `gc.delete_doomed`."""
    world = await session.get(World, name, with_for_update=True)
    if world is None:
        raise WorldNotFound()
    keys = list(await session.scalars(select(Chunk.object_key).where(Chunk.world == name)))
    # What snapshots name goes first: the cascades from the world row run in no fixed order,
    # and a chunk row must never go while a snapshot still names it.
    await session.execute(delete(SnapshotChunk).where(SnapshotChunk.world == name))
    await session.delete(world)
    await session.flush()
    for key in keys:
        session.add(DoomedObject(object_key=key, world=name, doomed_at=clock.now()))
