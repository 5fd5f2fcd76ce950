"""World tables: worlds with their write lease, committed snapshots, what each snapshot names,
and the chunks uploaded.

A snapshot's chunks are rows, not a JSON manifest, so the database itself refuses to forget a
chunk that a snapshot names (the foreign key from `world_snapshot_chunks` to `world_chunks`),
whatever the garbage collector and a save in progress do at the same moment.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from homeport.db.base import Base


class World(Base):
    __tablename__ = "worlds"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(80), default="")
    """Who may use it besides admins: `fleet:<name>` (any server of that fleet), `key:<id>`
    (one server key), or empty (any key with scope `worlds`)."""
    latest_seq: Mapped[int | None] = mapped_column(Integer)
    next_seq: Mapped[int] = mapped_column(Integer, default=1)
    lease_key_id: Mapped[uuid.UUID | None]
    lease_server_id: Mapped[uuid.UUID | None]
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Chunk(Base):
    """An uploaded chunk, by content. `uploaded_at` is refreshed whenever a save says it will
    use the chunk again, which is what keeps it from the garbage collector during that save."""

    __tablename__ = "world_chunks"
    __table_args__ = (Index("ix_world_chunks_world_uploaded_at", "world", "uploaded_at"),)

    world: Mapped[str] = mapped_column(
        ForeignKey("worlds.name", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    object_key: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime]


class Snapshot(Base):
    __tablename__ = "world_snapshots"

    world: Mapped[str] = mapped_column(
        ForeignKey("worlds.name", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(80))
    chunk_count: Mapped[int] = mapped_column(Integer)
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    snapshot_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)


class SnapshotChunk(Base):
    __tablename__ = "world_snapshot_chunks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["world", "seq"],
            ["world_snapshots.world", "world_snapshots.seq"],
            ondelete="CASCADE",
            name="fk_world_snapshot_chunks_snapshot",
        ),
        ForeignKeyConstraint(
            ["world", "sha256"],
            ["world_chunks.world", "world_chunks.sha256"],
            name="fk_world_snapshot_chunks_chunk",
        ),
        Index("ix_world_snapshot_chunks_world_sha256", "world", "sha256"),
    )

    world: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    chunk_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))


class DoomedObject(Base):
    """A stored object whose chunk row is gone, until storage confirms it deleted it.

    Written in the transaction that deletes the rows, so an object is never forgotten when the
    storage is unreachable or the process dies between the commit and the deletion."""

    __tablename__ = "world_doomed_objects"

    object_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    world: Mapped[str] = mapped_column(String(64))
    doomed_at: Mapped[datetime] = mapped_column(index=True)
