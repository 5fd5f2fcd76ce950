"""Tables of player data: versioned JSON documents, inventory stacks and their ledger."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from homeport.db.base import Base

_ACCOUNT = "accounts.id"
# SQLite gives an auto-incrementing id only to an INTEGER PRIMARY KEY column.
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


class PlayerDocument(Base):
    """One JSON document of one player, in a named collection, under a key.

    `version` starts at 1 and grows by one with every write: a writer that read version n and
    writes with `If-Match: n` fails instead of overwriting a change it never saw. A delete
    leaves a tombstone (`deleted_at`) that keeps the version, so a document created again goes
    on from there and a writer holding a version of the deleted one still fails. `size` (what
    the document counts against the quotas) makes usage one indexed SUM.
    """

    __tablename__ = "player_documents"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(_ACCOUNT, ondelete="CASCADE"), primary_key=True
    )
    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class InventoryStack(Base):
    """How many of one item a player holds; never negative."""

    __tablename__ = "inventory_stacks"
    __table_args__ = (CheckConstraint("quantity >= 0", name="quantity_not_negative"),)

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(_ACCOUNT, ondelete="CASCADE"), primary_key=True
    )
    item: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class InventoryChange(Base):
    """The append-only ledger: one row per item changed by a grant or a consume."""

    __tablename__ = "inventory_ledger"
    __table_args__ = (Index("ix_inventory_ledger_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(_ACCOUNT, ondelete="CASCADE"))
    operation_id: Mapped[uuid.UUID]
    """The grant or consume this change belongs to: one request, several items."""
    kind: Mapped[str] = mapped_column(String(16))
    item: Mapped[str] = mapped_column(String(64))
    delta: Mapped[int] = mapped_column(BigInteger)
    balance: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(80))
    """Who asked: `key:<name>` for a server or admin key."""
    created_at: Mapped[datetime]


class InventoryOperation(Base):
    """A grant or consume done under an `Idempotency-Key`, and the answer it got.

    A retried request with the same key is answered from here and changes nothing; the same key
    with a different request is refused. The primary key makes concurrent retries wait for the
    first to commit instead of both applying.
    """

    __tablename__ = "inventory_operations"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(_ACCOUNT, ondelete="CASCADE"), primary_key=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(16))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)
