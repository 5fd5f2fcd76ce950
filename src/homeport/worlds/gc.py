"""Retention and garbage collection, run by the leader.

Snapshots past retention are deleted first; then chunks that no kept snapshot names and that
were not uploaded (or reused by a save) within `worlds_upload_grace` lose their rows, and only
after that commit are their objects removed. A chunk a commit names cannot lose its row (the
foreign key refuses; the pass fails and the next one skips it), and an upload that races a
deletion writes an object under a key of its own, never one being removed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Row, delete, exists, select
from sqlalchemy.exc import IntegrityError

from homeport.db.session import unit_of_work
from homeport.worlds.context import Worlds
from homeport.worlds.models import Chunk, Snapshot, SnapshotChunk, World
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
        except IntegrityError:
            # A save named one of them meanwhile: nothing was deleted; the next pass skips it.
            log.info("world %s: a save reused a chunk being collected; retrying later", name)
            return total, freed
        if rows:
            await (await worlds.started()).delete([r[1] for r in rows])
            total += len(rows)
            freed += sum(int(row[2]) for row in rows)
        if len(candidates) < BATCH:
            return total, freed


async def collect(worlds: Worlds) -> Collected:
    """One pass over every world."""
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
