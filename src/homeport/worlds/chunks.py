"""Chunk uploads and reads, by content hash.

An upload takes the world's lease and learns whether the chunk is already there in one short
transaction, receives the bytes outside any transaction (a slow upload must not hold the
database), stores them, then records the chunk. Two uploads of the same chunk may race; each
writes an object of its own and only the first row counts, the other object is removed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.db.session import unit_of_work
from homeport.worlds import leases, spool
from homeport.worlds.access import Writer, check_owner
from homeport.worlds.context import Worlds
from homeport.worlds.errors import ChunkNotFound, HashMismatch
from homeport.worlds.models import Chunk, DoomedObject, World
from homeport.worlds.service import open_for_read, open_for_write
from homeport.worlds.storage import object_key

LOOKUP_BATCH = 500


async def touch(session: AsyncSession, world: str, hashes: list[str], now: datetime) -> set[str]:
    """Mark these chunks as just uploaded; the ones the world has. One statement per batch
    both finds and protects them: a chunk the collector deletes first is not returned, one it
    comes to later is no longer past its cutoff."""
    found: set[str] = set()
    for i in range(0, len(hashes), LOOKUP_BATCH):
        found.update(
            await session.scalars(
                update(Chunk)
                .where(Chunk.world == world, Chunk.sha256.in_(hashes[i : i + LOOKUP_BATCH]))
                .values(uploaded_at=now)
                .returning(Chunk.sha256)
            )
        )
    return found


async def present(session: AsyncSession, world: str, hashes: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(hashes), LOOKUP_BATCH):
        batch = hashes[i : i + LOOKUP_BATCH]
        found.update(
            await session.scalars(
                select(Chunk.sha256).where(Chunk.world == world, Chunk.sha256.in_(batch))
            )
        )
    return found


async def missing(worlds: Worlds, name: str, writer: Writer, hashes: list[str]) -> list[str]:
    """Which of these chunks the world lacks. Asking starts a save: it takes the lease, and the
    chunks that are there count as freshly uploaded, so the garbage collector leaves them be
    until the save commits."""
    wanted = list(dict.fromkeys(hashes))
    async with unit_of_work(worlds.sessions) as session:
        await open_for_write(session, worlds.clock, name, writer, worlds.settings.worlds_lease_ttl)
        found = await touch(session, name, sorted(wanted), worlds.clock.now())
    return [h for h in wanted if h not in found]


async def upload(
    worlds: Worlds,
    name: str,
    writer: Writer,
    sha256: str,
    body: AsyncIterator[bytes],
    content_md5: str | None,
) -> bool:
    """Store one chunk; True when it is new, False when the world already had it.

    A new chunk costs one write transaction, after its bytes are stored: the checks before
    them (owner, another server's lease, whether the chunk is known) are reads, repeated
    under the world's lock when the chunk is recorded."""
    ttl = worlds.settings.worlds_lease_ttl
    if await _known(worlds, name, writer, sha256):
        async with unit_of_work(worlds.sessions) as session:
            await open_for_write(session, worlds.clock, name, writer, ttl)
            known = bool(await touch(session, name, [sha256], worlds.clock.now()))
        if known:
            async for _ in body:  # the bytes are already stored: read and drop them
                pass
            return False
    storage = await worlds.started()
    async with worlds.storage_errors():  # the spool's disk full: the storage's failure too
        received = await spool.receive(
            body, storage.spool_dir, worlds.settings.worlds_chunk_max_bytes
        )
    try:
        if received.sha256 != sha256:
            raise HashMismatch(
                f"The body's SHA-256 is {received.sha256}", received_sha256=received.sha256
            )
        if content_md5 is not None and content_md5.strip() != received.md5_base64:
            raise HashMismatch("The body's MD5 is not the Content-MD5 header's")
        key = object_key(name, sha256)
        async with worlds.storage_errors():
            await storage.store(key, received.path, received.size)
    finally:
        await spool.remove(received.path)
    try:
        async with unit_of_work(worlds.sessions) as session:
            await open_for_write(session, worlds.clock, name, writer, ttl)
            session.add(
                Chunk(
                    world=name,
                    sha256=sha256,
                    size=received.size,
                    object_key=key,
                    uploaded_at=worlds.clock.now(),
                )
            )
    except IntegrityError:
        await _abandon(worlds, name, key)  # another upload of these bytes won (the key)
        return False
    except BaseException:
        await _abandon(worlds, name, key)  # the lease went to another server meanwhile, say
        raise
    return True


async def _known(worlds: Worlds, name: str, writer: Writer, sha256: str) -> bool:
    """Whether the world has the chunk, after refusing a caller who may not write it now."""
    now = worlds.clock.now()
    async with worlds.read_sessions() as session:
        found = (
            await session.execute(
                select(World, Chunk.sha256)
                .outerjoin(Chunk, (Chunk.world == World.name) & (Chunk.sha256 == sha256))
                .where(World.name == name)
            )
        ).first()
        if found is None:
            return False
        world, known = found
        check_owner(world, writer)
        if not writer.holds(world) and await leases.alive(session, world, now):
            leases.raise_leased(world, now)
        return known is not None


async def _abandon(worlds: Worlds, name: str, key: str) -> None:
    """An object no row names: doomed, then deleted at once if the storage can."""
    async with unit_of_work(worlds.sessions) as session:
        session.add(DoomedObject(object_key=key, world=name, doomed_at=worlds.clock.now()))
    with contextlib.suppress(Exception):
        storage = await worlds.started()
        await storage.delete([key])  # else a collector pass deletes it


async def for_read(worlds: Worlds, name: str, writer: Writer, sha256: str) -> Chunk:
    async with worlds.read_sessions() as session:
        await open_for_read(session, name, writer)
        chunk = await session.get(Chunk, (name, sha256))
    if chunk is None:
        raise ChunkNotFound()
    return chunk
