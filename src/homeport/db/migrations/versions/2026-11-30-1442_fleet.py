"""Fleets and their game servers; fleet server keys bound to one server; heartbeat directives.

Revision ID: e6b1f4a7c9d2
Revises: d5a8e3f1b2c4
Create Date: 2026-11-30 14:42:31.934791
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import homeport.db.base

revision: str = "e6b1f4a7c9d2"
down_revision: str | None = "d5a8e3f1b2c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "fleets",
        sa.Column("name", sa.String(length=48), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("crash_streak", sa.Integer(), nullable=False),
        sa.Column("start_after", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_fleets")),
    )
    op.create_table(
        "game_servers",
        sa.Column("fleet", sa.String(length=48), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("label_index", sa.String(length=2400), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("process_started", sa.Float(), nullable=True),
        sa.Column("players", sa.Integer(), nullable=False),
        sa.Column("empty_since", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("allocation", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("created_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ready_at", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("allocated_at", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("drain_at", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("term_at", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_game_servers")),
    )
    with op.batch_alter_table("game_servers", schema=None) as batch_op:
        batch_op.create_index("ix_game_servers_fleet_state", ["fleet", "state"], unique=False)
        batch_op.create_index("ix_game_servers_state_ended_at", ["state", "ended_at"], unique=False)

    with op.batch_alter_table("server_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("server_id", sa.Uuid(), nullable=True))

    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("directive", sa.JSON(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_column("directive")

    with op.batch_alter_table("server_keys", schema=None) as batch_op:
        batch_op.drop_column("server_id")

    with op.batch_alter_table("game_servers", schema=None) as batch_op:
        batch_op.drop_index("ix_game_servers_state_ended_at")
        batch_op.drop_index("ix_game_servers_fleet_state")

    op.drop_table("game_servers")
    op.drop_table("fleets")
