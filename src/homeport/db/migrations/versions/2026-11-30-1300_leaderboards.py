"""leaderboards

Revision ID: c3f9a2d6e812
Revises: b7d41e0a9c11
Create Date: 2026-11-30 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import homeport.db.base

revision: str = "c3f9a2d6e812"
down_revision: str | None = "b7d41e0a9c11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leaderboards",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("sort_order", sa.String(length=4), nullable=False),
        sa.Column("operator", sa.String(length=16), nullable=False),
        sa.Column("reset", sa.String(length=16), nullable=False),
        sa.Column("cron", sa.String(length=128), nullable=True),
        sa.Column("created_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboards")),
    )
    op.create_table(
        "leaderboard_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboard_changes")),
    )
    op.create_table(
        "leaderboard_periods",
        sa.Column("board_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("starts_at", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["board_id"],
            ["leaderboards.id"],
            name=op.f("fk_leaderboard_periods_board_id_leaderboards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("board_id", "period", name=op.f("pk_leaderboard_periods")),
    )
    op.create_table(
        "leaderboard_records",
        sa.Column("board_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("player_id", sa.Uuid(), nullable=False),
        sa.Column("score", sa.BigInteger(), nullable=False),
        sa.Column("subscore", sa.BigInteger(), nullable=False),
        sa.Column("order_score", sa.BigInteger(), nullable=False),
        sa.Column("order_subscore", sa.BigInteger(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("reached_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["board_id"],
            ["leaderboards.id"],
            name=op.f("fk_leaderboard_records_board_id_leaderboards"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["accounts.id"],
            name=op.f("fk_leaderboard_records_player_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "board_id", "period", "player_id", name=op.f("pk_leaderboard_records")
        ),
    )
    with op.batch_alter_table("leaderboard_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_leaderboard_records_player_id"), ["player_id"], unique=False
        )
        batch_op.create_index(
            "ix_leaderboard_records_standing",
            ["board_id", "period", "order_score", "order_subscore", "reached_us", "player_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("leaderboard_records", schema=None) as batch_op:
        batch_op.drop_index("ix_leaderboard_records_standing")
        batch_op.drop_index(batch_op.f("ix_leaderboard_records_player_id"))

    op.drop_table("leaderboard_records")
    op.drop_table("leaderboard_periods")
    op.drop_table("leaderboard_changes")
    op.drop_table("leaderboards")
