"""Player documents keep a tombstone when deleted, so versions never restart.

Revision ID: d5a8e3f1b2c4
Revises: c3f9a2d6e812
Create Date: 2026-11-30 13:35:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import homeport.db.base

revision: str = "d5a8e3f1b2c4"
down_revision: str | None = "c3f9a2d6e812"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("player_documents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("deleted_at", homeport.db.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    op.execute("DELETE FROM player_documents WHERE deleted_at IS NOT NULL")
    with op.batch_alter_table("player_documents", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
