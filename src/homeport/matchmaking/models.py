"""Matchmaking tables: queues, tickets, who is searching, and the matches made."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from homeport.db.base import Base, UUIDPrimaryKey


class Queue(Base):
    __tablename__ = "matchmaking_queues"

    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Ticket(UUIDPrimaryKey, Base):
    """A party's (often of one) wish to play in a queue, until it has a server or ends."""

    __tablename__ = "matchmaking_tickets"
    __table_args__ = (
        Index("ix_matchmaking_tickets_queue_state", "queue", "state"),
        Index("ix_matchmaking_tickets_state_expires_at", "state", "expires_at"),
    )

    queue: Mapped[str] = mapped_column(String(48))
    leader_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    players: Mapped[list[str]] = mapped_column(JSON)
    """The party, leader first."""
    skill: Mapped[float] = mapped_column(Float)
    properties: Mapped[dict[str, str]] = mapped_column(JSON)
    latencies: Mapped[dict[str, float]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    match_id: Mapped[uuid.UUID | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Allocations that failed for this ticket's matches."""
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Searching(Base):
    """One row per player with an active ticket: the primary key makes "one active ticket per
    player" a rule the database enforces, even for two requests at the same moment."""

    __tablename__ = "matchmaking_searching"

    player_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("matchmaking_tickets.id", ondelete="CASCADE"), index=True
    )


class Match(UUIDPrimaryKey, Base):
    __tablename__ = "matches"

    queue: Mapped[str] = mapped_column(String(48))
    state: Mapped[str] = mapped_column(String(16))
    """allocating, allocated, failed, abandoned (a ticket was cancelled meanwhile), completed."""
    teams: Mapped[list[list[str]]] = mapped_column(JSON)
    """Player ids per team."""
    tickets: Mapped[list[str]] = mapped_column(JSON)
    region: Mapped[str | None] = mapped_column(String(32))
    fleet: Mapped[str] = mapped_column(String(48))
    server_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    address: Mapped[str | None] = mapped_column(String(253))
    port: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200), default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    allocated_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
