"""world doomed objects

Revision ID: b9e4f6a3d8c2
Revises: a8d3e5f2c7b1
Create Date: 2026-11-30 18:28:29.894970
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import homeport.db.base

revision: str = "b9e4f6a3d8c2"
down_revision: str | None = "a8d3e5f2c7b1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "world_doomed_objects",
        sa.Column("object_key", sa.String(length=200), nullable=False),
        sa.Column("world", sa.String(length=64), nullable=False),
        sa.Column("doomed_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("object_key", name=op.f("pk_world_doomed_objects")),
    )
    with op.batch_alter_table("world_doomed_objects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_world_doomed_objects_doomed_at"), ["doomed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("world_doomed_objects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_world_doomed_objects_doomed_at"))

    op.drop_table("world_doomed_objects")
