"""Committing a save as a snapshot, and reading snapshots back.

A commit is one transaction: the world's latest moves to the new snapshot only when every chunk
it names is stored, so a save interrupted at any point leaves the previous snapshot the latest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.db.session import unit_of_work
from homeport.errors import UnprocessableContent
from homeport.observability.instruments import count_snapshot_commit, outcome
from homeport.worlds.access import Writer
from homeport.worlds.chunks import LOOKUP_BATCH
from homeport.worlds.context import Worlds
from homeport.worlds.errors import ChunksMissing, SnapshotConflict, SnapshotNotFound
from homeport.worlds.models import Chunk, Snapshot, SnapshotChunk
from homeport.worlds.service import open_for_read, open_for_write

SHOWN_MISSING = 100


@dataclass(frozen=True)
class SnapshotView:
    world: str
    seq: int
    created_at: datetime
    created_by: str
    chunk_count: int
    total_bytes: int
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Commit:
    """A save: a whole manifest, or the changes since `base` (which must then be the latest)."""

    manifest: dict[str, str] | None
    base: int | None
    changes: dict[str, str]
    removed: list[str]
    metadata: dict[str, Any]


def _view(row: Snapshot) -> SnapshotView:
    return SnapshotView(
        row.world,
        row.seq,
        row.created_at,
        row.created_by,
        row.chunk_count,
        row.total_bytes,
        row.snapshot_metadata,
    )


async def manifest_of(session: AsyncSession, world: str, seq: int) -> dict[str, str]:
    rows = await session.execute(
        select(SnapshotChunk.chunk_id, SnapshotChunk.sha256)
        .where(SnapshotChunk.world == world, SnapshotChunk.seq == seq)
        .order_by(SnapshotChunk.chunk_id)
    )
    return {chunk_id: sha256 for chunk_id, sha256 in rows.all()}  # noqa: C416


async def _sizes(session: AsyncSession, world: str, hashes: list[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for i in range(0, len(hashes), LOOKUP_BATCH):
        rows = await session.execute(
            select(Chunk.sha256, Chunk.size).where(
                Chunk.world == world, Chunk.sha256.in_(hashes[i : i + LOOKUP_BATCH])
            )
        )
        sizes.update({sha: int(size) for sha, size in rows.all()})
    return sizes


async def commit(worlds: Worlds, name: str, writer: Writer, save: Commit) -> SnapshotView:
    with outcome(count_snapshot_commit):
        for attempt in range(2):
            try:
                return await _commit(worlds, name, writer, save)
            except IntegrityError:
                # A chunk was collected between the check and the insert: the next try says so.
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


async def _commit(worlds: Worlds, name: str, writer: Writer, save: Commit) -> SnapshotView:
    settings = worlds.settings
    async with unit_of_work(worlds.sessions) as session:
        world = await open_for_write(session, worlds.clock, name, writer, settings.worlds_lease_ttl)
        if save.base is not None and world.latest_seq != save.base:
            raise SnapshotConflict(
                f"The latest snapshot is {world.latest_seq}, not {save.base}",
                latest=world.latest_seq,
            )
        if save.manifest is not None:
            manifest = save.manifest
        else:
            assert save.base is not None  # the request's shape guarantees it
            manifest = await manifest_of(session, name, save.base)
            manifest.update(save.changes)
            for chunk_id in save.removed:
                manifest.pop(chunk_id, None)
        if len(manifest) > settings.worlds_manifest_max_chunks:
            raise UnprocessableContent(
                f"A snapshot may name at most {settings.worlds_manifest_max_chunks} chunks"
            )
        hashes = sorted(set(manifest.values()))
        sizes = await _sizes(session, name, hashes)
        lacking = [h for h in hashes if h not in sizes]
        if lacking:
            raise ChunksMissing(missing=lacking[:SHOWN_MISSING], missing_count=len(lacking))
        now = worlds.clock.now()
        seq = world.next_seq
        world.next_seq, world.latest_seq, world.updated_at = seq + 1, seq, now
        row = Snapshot(
            world=name,
            seq=seq,
            created_at=now,
            created_by=writer.label,
            chunk_count=len(manifest),
            total_bytes=sum(sizes[h] for h in manifest.values()),
            snapshot_metadata=save.metadata,
        )
        session.add(row)
        await session.flush()
        if manifest:
            await session.execute(
                insert(SnapshotChunk),
                [
                    {"world": name, "seq": seq, "chunk_id": chunk_id, "sha256": sha256}
                    for chunk_id, sha256 in manifest.items()
                ],
            )
        return _view(row)


async def read(
    worlds: Worlds, name: str, writer: Writer, seq: int | None
) -> tuple[SnapshotView, dict[str, str]] | None:
    """A snapshot with its manifest: the given one, or the latest (None when there is none).

    The latest can move on, and its predecessor be pruned, between the statements that read
    it: a manifest that does not hold all the snapshot's chunks was read mid-prune, and the
    read starts again from the new latest."""
    for _ in range(5):
        async with worlds.read_sessions() as session:
            world = await open_for_read(session, name, writer)
            wanted = world.latest_seq if seq is None else seq
            if wanted is None:
                return None
            row = await session.get(Snapshot, (name, wanted))
            if row is not None:
                manifest = await manifest_of(session, name, wanted)
                if len(manifest) == row.chunk_count:
                    return _view(row), manifest
            if seq is not None:
                raise SnapshotNotFound()
    raise SnapshotNotFound("The world changed too fast to read; try again")


async def history(
    worlds: Worlds, name: str, writer: Writer, before: int | None, limit: int
) -> list[SnapshotView]:
    async with worlds.read_sessions() as session:
        await open_for_read(session, name, writer)
        query = (
            select(Snapshot)
            .where(Snapshot.world == name)
            .order_by(Snapshot.seq.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(Snapshot.seq < before)
        return [_view(row) for row in await session.scalars(query)]
