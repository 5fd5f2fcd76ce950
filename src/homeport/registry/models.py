"""Registry tables: live dedicated servers and the join tickets bound to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from homeport.db.base import Base, UUIDPrimaryKey


class Server(UUIDPrimaryKey, Base):
    """A registered dedicated server, live while `lease_expires_at` is in the future.

    Queries filter on the lease, so a server that stops heartbeating leaves the list the moment
    its lease runs out; the purge loop only reclaims the row later.
    """

    __tablename__ = "servers"
    __table_args__ = (
        UniqueConstraint("key_id", "address", "port", name="uq_servers_key_address_port"),
        Index("ix_servers_players_id", "players", "id"),
        Index("ix_servers_name_id", "name", "id"),
        Index("ix_servers_created_at_id", "created_at", "id"),
    )

    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("server_keys.id", ondelete="CASCADE"))
    """The key that registered the server: the only one that may heartbeat or remove it."""
    name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    map: Mapped[str] = mapped_column(String(64), default="")
    mode: Mapped[str] = mapped_column(String(64), default="")
    region: Mapped[str] = mapped_column(String(64), default="")
    version: Mapped[str] = mapped_column(String(64), default="")
    players: Mapped[int] = mapped_column(Integer, default=0)
    max_players: Mapped[int] = mapped_column(Integer)
    tags: Mapped[str] = mapped_column(String(600), default="")
    """`|a|b|`: each tag between bars, so a tag filter is one portable LIKE."""
    game_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    private_metadata: Mapped[dict[str, Any]] = mapped_column(JSON)
    password_protected: Mapped[bool] = mapped_column(Boolean, default=False)
    require_join_ticket: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16))
    player_ids: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    lease_expires_at: Mapped[datetime] = mapped_column(index=True)
    directive: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """What the server's next heartbeat answer tells it: `action` (e.g. "drain") and
    `allocation`. Set by the fleet; the registry only hands it over."""


class JoinTicket(Base):
    """A single-use pass for one player to join one server, stored hashed like any credential."""

    __tablename__ = "join_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    server_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
