"""The dashboard's one table: samples of the platform's size over time, for its charts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from homeport.db.base import Base


class StatsSample(Base):
    """Live servers, players online and searching tickets at one moment. The registry and the
    fleet only know the present; these rows are what lets a chart show the last hour."""

    __tablename__ = "stats_samples"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    taken_at: Mapped[datetime] = mapped_column(index=True)
    servers: Mapped[int] = mapped_column(Integer)
    """Live servers in the registry."""
    servers_by_state: Mapped[dict[str, int]] = mapped_column(JSON)
    """The same by registry state (`ready`, `in_match`, ...)."""
    fleet_by_state: Mapped[dict[str, int]] = mapped_column(JSON)
    """Live fleet servers by fleet state (`starting`, `ready`, `allocated`, `draining`, ...)."""
    players_online: Mapped[int] = mapped_column(Integer)
    """Players the live servers report in their heartbeats."""
    tickets_searching: Mapped[int] = mapped_column(Integer)
