"""Fleet tables: the fleets and every game server started from one, live or ended.

The database is the one truth every process shares: any worker allocates with one atomic
update, and the fleet agent (one process) starts, watches and stops the processes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from homeport.db.base import Base, UUIDPrimaryKey


class Fleet(Base):
    __tablename__ = "fleets"

    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    """A `FleetSpec`, as JSON."""
    source: Mapped[str] = mapped_column(String(16))
    """`config` (homeport.toml, re-applied at start) or `api` (admin endpoints)."""
    crash_streak: Mapped[int] = mapped_column(Integer, default=0)
    """Crashes since a server of this fleet last became ready: the back-off's exponent."""
    start_after: Mapped[datetime | None]
    """No new server before this time (crash-loop back-off)."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class GameServer(UUIDPrimaryKey, Base):
    """One server process of a fleet. Its id is also its registry id and its key's binding."""

    __tablename__ = "game_servers"
    __table_args__ = (
        Index("ix_game_servers_fleet_state", "fleet", "state"),
        Index("ix_game_servers_state_ended_at", "state", "ended_at"),
    )

    fleet: Mapped[str] = mapped_column(String(48))
    state: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(255), default="")
    """The machine whose agent runs the process (local provider)."""
    address: Mapped[str] = mapped_column(String(253))
    port: Mapped[int | None] = mapped_column(Integer)
    region: Mapped[str] = mapped_column(String(64), default="")
    version: Mapped[str] = mapped_column(String(64), default="")
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    label_index: Mapped[str] = mapped_column(String(2400), default="|")
    """The labels as `|k=v|...|`, for selectors (see `allocation.label_index`)."""
    key_id: Mapped[uuid.UUID | None]
    """The server's own API key, revoked when it ends."""
    pid: Mapped[int | None] = mapped_column(Integer)
    process_started: Mapped[float | None] = mapped_column(Float)
    """The process's start time as the kernel tells it: with the pid, proof that a process
    found after a restart is this server and not a stranger that reused the pid."""
    players: Mapped[int] = mapped_column(Integer, default=0)
    empty_since: Mapped[datetime | None]
    allocation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(200), default="")
    """Why it is unhealthy, draining or ended."""
    exit_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]
    allocated_at: Mapped[datetime | None]
    drain_at: Mapped[datetime | None]
    """When it was asked to drain (heartbeat action); SIGTERM follows after the notice."""
    term_at: Mapped[datetime | None]
    """When SIGTERM was sent; SIGKILL follows after the grace period."""
    ended_at: Mapped[datetime | None]
