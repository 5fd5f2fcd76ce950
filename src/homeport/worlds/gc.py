"""Retention and garbage collection, run by the leader.

Snapshots past retention are deleted first; then chunks that no kept snapshot names and that
were not uploaded (or reused by a save) within `worlds_upload_grace` lose their rows, and only
after that commit are their objects removed (each one recorded in the same transaction, so an
object whose deletion fails is deleted by a later pass). A chunk a commit names cannot lose
its row (the foreign key refuses; the pass fails and the next one skips it), and an upload
that races a deletion writes an object under a key of its own, never one being removed.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.db.session import unit_of_work
from homeport.settings import Settings
from homeport.worlds.context import Worlds
from homeport.worlds.models import Chunk, DoomedObject, Snapshot, SnapshotChunk, World
from homeport.worlds.retention import kept

log = logging.getLogger("homeport.worlds")
BATCH = 500


@dataclass
class Collected:
    snapshots: int = 0
    chunks: int = 0
    bytes: int = 0


async def prune_snapshots(worlds: Worlds, name: str) -> int:
    settings = worlds.settings
    async with unit_of_work(worlds.sessions) as session:
        world = await session.get(World, name, with_for_update=True)
        if world is None:
            return 0
        rows = (
            await session.execute(
                select(Snapshot.seq, Snapshot.created_at).where(Snapshot.world == name)
            )
        ).all()
        keep = kept(
            [(seq, created) for seq, created in rows],
            keep_last=settings.worlds_keep_last,
            daily_days=settings.worlds_keep_daily_days,
            now=worlds.clock.now(),
        )
        if world.latest_seq is not None:
            keep.add(world.latest_seq)
        doomed = [seq for seq, _ in rows if seq not in keep]
        for i in range(0, len(doomed), BATCH):
            part = doomed[i : i + BATCH]
            # Explicitly, not by cascade alone: SQLite only cascades with foreign keys on.
            await session.execute(
                delete(SnapshotChunk).where(
                    SnapshotChunk.world == name, SnapshotChunk.seq.in_(part)
                )
            )
            await session.execute(
                delete(Snapshot).where(Snapshot.world == name, Snapshot.seq.in_(part))
            )
        return len(doomed)


async def collect_chunks(worlds: Worlds, name: str) -> tuple[int, int]:
    """Forget unreferenced chunks past the grace, then delete their objects: (chunks, bytes)."""
    cutoff = worlds.clock.now() - timedelta(seconds=worlds.settings.worlds_upload_grace)
    total = freed = 0
    while True:
        try:
            async with unit_of_work(worlds.sessions) as session:
                referenced = exists().where(
                    SnapshotChunk.world == Chunk.world, SnapshotChunk.sha256 == Chunk.sha256
                )
                candidates = list(
                    await session.scalars(
                        select(Chunk.sha256)
                        .where(Chunk.world == name, Chunk.uploaded_at < cutoff, ~referenced)
                        .limit(BATCH)
                    )
                )
                rows: Sequence[Row[str, str, int]] = ()
                if candidates:
                    # RETURNING: a row a save touched meanwhile is no longer past the cutoff
                    # and stays, so only what this statement deleted loses its object.
                    rows = (
                        await session.execute(
                            delete(Chunk)
                            .where(
                                Chunk.world == name,
                                Chunk.sha256.in_(candidates),
                                Chunk.uploaded_at < cutoff,
                            )
                            .returning(Chunk.sha256, Chunk.object_key, Chunk.size)
                        )
                    ).all()
                    doom(session, name, [row[1] for row in rows], worlds.clock.now())
        except IntegrityError:
            # A save named one of them meanwhile: nothing was deleted; the next pass skips it.
            log.info("world %s: a save reused a chunk being collected; retrying later", name)
            return total, freed
        if rows:
            await delete_doomed(worlds)
            total += len(rows)
            freed += sum(int(row[2]) for row in rows)
        if len(candidates) < BATCH:
            return total, freed


def doom(session: AsyncSession, world: str, keys: list[str], now: datetime) -> None:
    for key in keys:
        session.add(DoomedObject(object_key=key, world=world, doomed_at=now))


async def delete_doomed(worlds: Worlds) -> int:
    """Delete the doomed objects from storage, then forget them; how many went."""
    await _durable(worlds.settings)
    storage = await worlds.started()
    done = 0
    while True:
        async with worlds.read_sessions() as session:
            keys = list(
                await session.scalars(
                    select(DoomedObject.object_key).order_by(DoomedObject.doomed_at).limit(BATCH)
                )
            )
        if not keys:
            return done
        await storage.delete(keys)
        async with unit_of_work(worlds.sessions) as session:
            await session.execute(delete(DoomedObject).where(DoomedObject.object_key.in_(keys)))
        done += len(keys)
        if len(keys) < BATCH:
            return done


async def _durable(settings: Settings) -> None:
    """On SQLite, make every commit so far durable before bytes are deleted on its word: with
    `synchronous=NORMAL` a commit may not survive a power cut until the log is synced, and a
    checkpoint syncs it. PostgreSQL's commits are durable when they return."""
    if settings.is_sqlite:
        path = settings.database_url.split(":///", 1)[1]
        await asyncio.to_thread(_checkpoint, path)


def _checkpoint(path: str) -> None:
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        connection.close()


async def collect(worlds: Worlds) -> Collected:
    """One pass over every world."""
    await delete_doomed(worlds)  # left by a pass or a world deletion that could not finish
    result = Collected()
    after = ""
    while True:
        async with worlds.read_sessions() as session:
            names = list(
                await session.scalars(
                    select(World.name).where(World.name > after).order_by(World.name).limit(BATCH)
                )
            )
        for name in names:
            result.snapshots += await prune_snapshots(worlds, name)
            chunks, size = await collect_chunks(worlds, name)
            result.chunks += chunks
            result.bytes += size
        if len(names) < BATCH:
            break
        after = names[-1]
    if result.snapshots or result.chunks:
        log.info(
            "worlds: removed %d snapshots and %d chunks (%d bytes)",
            result.snapshots,
            result.chunks,
            result.bytes,
        )
    return result
