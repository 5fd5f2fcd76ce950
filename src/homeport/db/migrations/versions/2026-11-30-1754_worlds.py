"""worlds

Revision ID: a8d3e5f2c7b1
Revises: f7c2a9e4d1b3
Create Date: 2026-11-30 17:54:34.347525
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import homeport.db.base

revision: str = "a8d3e5f2c7b1"
down_revision: str | None = "f7c2a9e4d1b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worlds",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("latest_seq", sa.Integer(), nullable=True),
        sa.Column("next_seq", sa.Integer(), nullable=False),
        sa.Column("lease_key_id", sa.Uuid(), nullable=True),
        sa.Column("lease_server_id", sa.Uuid(), nullable=True),
        sa.Column("lease_expires_at", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worlds")),
    )
    op.create_table(
        "world_chunks",
        sa.Column("world", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("object_key", sa.String(length=200), nullable=False),
        sa.Column("uploaded_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["world"],
            ["worlds.name"],
            name=op.f("fk_world_chunks_world_worlds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("world", "sha256", name=op.f("pk_world_chunks")),
    )
    with op.batch_alter_table("world_chunks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_world_chunks_world_uploaded_at", ["world", "uploaded_at"], unique=False
        )

    op.create_table(
        "world_snapshots",
        sa.Column("world", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("created_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["world"],
            ["worlds.name"],
            name=op.f("fk_world_snapshots_world_worlds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("world", "seq", name=op.f("pk_world_snapshots")),
    )
    op.create_table(
        "world_snapshot_chunks",
        sa.Column("world", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("chunk_id", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["world", "seq"],
            ["world_snapshots.world", "world_snapshots.seq"],
            name="fk_world_snapshot_chunks_snapshot",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["world", "sha256"],
            ["world_chunks.world", "world_chunks.sha256"],
            name="fk_world_snapshot_chunks_chunk",
        ),
        sa.PrimaryKeyConstraint("world", "seq", "chunk_id", name=op.f("pk_world_snapshot_chunks")),
    )
    with op.batch_alter_table("world_snapshot_chunks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_world_snapshot_chunks_world_sha256", ["world", "sha256"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("world_snapshot_chunks", schema=None) as batch_op:
        batch_op.drop_index("ix_world_snapshot_chunks_world_sha256")

    op.drop_table("world_snapshot_chunks")
    op.drop_table("world_snapshots")
    with op.batch_alter_table("world_chunks", schema=None) as batch_op:
        batch_op.drop_index("ix_world_chunks_world_uploaded_at")

    op.drop_table("world_chunks")
    op.drop_table("worlds")
