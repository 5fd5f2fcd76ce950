"""Player data: versioned JSON documents, inventory stacks, ledger and idempotent operations.

Revision ID: b7d41e0a9c11
Revises: 5bcffcc4ddc7
Create Date: 2026-11-30 12:22:08.637953
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import homeport.db.base

revision: str = "b7d41e0a9c11"
down_revision: str | None = "5bcffcc4ddc7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inventory_ledger",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("operation_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("item", sa.String(length=64), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("created_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_inventory_ledger_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_ledger")),
    )
    with op.batch_alter_table("inventory_ledger", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inventory_ledger_account_id_id", ["account_id", "id"], unique=False
        )

    op.create_table(
        "inventory_operations",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_inventory_operations_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "idempotency_key", name=op.f("pk_inventory_operations")
        ),
    )
    with op.batch_alter_table("inventory_operations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inventory_operations_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "inventory_stacks",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("item", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_inventory_stacks_quantity_not_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_inventory_stacks_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "item", name=op.f("pk_inventory_stacks")),
    )
    op.create_table(
        "player_documents",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", homeport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_player_documents_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "collection", "key", name=op.f("pk_player_documents")
        ),
    )


def downgrade() -> None:
    op.drop_table("player_documents")
    op.drop_table("inventory_stacks")
    with op.batch_alter_table("inventory_operations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inventory_operations_created_at"))

    op.drop_table("inventory_operations")
    with op.batch_alter_table("inventory_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_inventory_ledger_account_id_id")

    op.drop_table("inventory_ledger")
