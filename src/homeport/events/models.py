"""The durable record of domain events (a server registered, expired, changed state, ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from homeport.db.base import Base


class EventRow(Base):
    """One event, written in the transaction that caused it, so it exists only if that did.

    Subscribers in other processes learn of it from PostgreSQL NOTIFY (sent in the same
    transaction) or, on SQLite, by reading rows past the last id they saw: SQLite has one writer
    at a time, so ids there grow in commit order.
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    topic: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)
