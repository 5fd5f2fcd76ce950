"""stats samples

Revision ID: c3a7d9e1f5b4
Revises: b9e4f6a3d8c2
Create Date: 2026-11-30 21:07:19.596922
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import homeport.db.base

revision: str = "c3a7d9e1f5b4"
down_revision: str | None = "b9e4f6a3d8c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_samples",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("taken_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("servers", sa.Integer(), nullable=False),
        sa.Column("servers_by_state", sa.JSON(), nullable=False),
        sa.Column("fleet_by_state", sa.JSON(), nullable=False),
        sa.Column("players_online", sa.Integer(), nullable=False),
        sa.Column("tickets_searching", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_samples")),
    )
    with op.batch_alter_table("stats_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stats_samples_taken_at"), ["taken_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stats_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stats_samples_taken_at"))

    op.drop_table("stats_samples")
