"""Matchmaking: queues, tickets, who is searching, matches.

Revision ID: f7c2a9e4d1b3
Revises: e6b1f4a7c9d2
Create Date: 2026-11-30 15:19:29.832484
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import homeport.db.base

revision: str = "f7c2a9e4d1b3"
down_revision: str | None = "e6b1f4a7c9d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "matches",
        sa.Column("queue", sa.String(length=48), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("teams", sa.JSON(), nullable=False),
        sa.Column("tickets", sa.JSON(), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=True),
        sa.Column("fleet", sa.String(length=48), nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=True),
        sa.Column("address", sa.String(length=253), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("allocated_at", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", homeport.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matches")),
    )
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_matches_server_id"), ["server_id"], unique=False)

    op.create_table(
        "matchmaking_queues",
        sa.Column("name", sa.String(length=48), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_matchmaking_queues")),
    )
    op.create_table(
        "matchmaking_tickets",
        sa.Column("queue", sa.String(length=48), nullable=False),
        sa.Column("leader_id", sa.Uuid(), nullable=False),
        sa.Column("players", sa.JSON(), nullable=False),
        sa.Column("skill", sa.Float(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("latencies", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("match_id", sa.Uuid(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["leader_id"],
            ["accounts.id"],
            name=op.f("fk_matchmaking_tickets_leader_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matchmaking_tickets")),
    )
    with op.batch_alter_table("matchmaking_tickets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_matchmaking_tickets_queue_state", ["queue", "state"], unique=False
        )
        batch_op.create_index(
            "ix_matchmaking_tickets_state_expires_at", ["state", "expires_at"], unique=False
        )

    op.create_table(
        "matchmaking_searching",
        sa.Column("player_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["accounts.id"],
            name=op.f("fk_matchmaking_searching_player_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["matchmaking_tickets.id"],
            name=op.f("fk_matchmaking_searching_ticket_id_matchmaking_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("player_id", name=op.f("pk_matchmaking_searching")),
    )
    with op.batch_alter_table("matchmaking_searching", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_matchmaking_searching_ticket_id"), ["ticket_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("matchmaking_searching", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matchmaking_searching_ticket_id"))

    op.drop_table("matchmaking_searching")
    with op.batch_alter_table("matchmaking_tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_matchmaking_tickets_state_expires_at")
        batch_op.drop_index("ix_matchmaking_tickets_queue_state")

    op.drop_table("matchmaking_tickets")
    op.drop_table("matchmaking_queues")
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matches_server_id"))

    op.drop_table("matches")
