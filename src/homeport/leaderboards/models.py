"""Leaderboard tables: boards, their records per period, the periods seen, and the change feed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from homeport.db.base import Base


class Leaderboard(Base):
    """A board's rules. Its records are kept per period; a reset starts a new period and leaves
    the old one readable (a past season), it never deletes records."""

    __tablename__ = "leaderboards"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sort_order: Mapped[str] = mapped_column(String(4))
    operator: Mapped[str] = mapped_column(String(16))
    reset: Mapped[str] = mapped_column(String(16))
    cron: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]


class LeaderboardRecord(Base):
    """A player's standing on one board in one period.

    `order_score` and `order_subscore` are the score and subscore negated on boards sorted
    high-first, so every board ranks by the same ascending index whatever its order. The
    tie-breaker `reached_us` (when the current score was first reached, in microseconds since
    the epoch) is an integer so that SQL and the in-memory rank index compare it identically on
    both databases. `version` grows with every change, so that a process applying changes from
    several sources keeps the newest whatever order they arrive in.
    """

    __tablename__ = "leaderboard_records"
    __table_args__ = (
        Index(
            "ix_leaderboard_records_standing",
            "board_id",
            "period",
            "order_score",
            "order_subscore",
            "reached_us",
            "player_id",
        ),
    )

    board_id: Mapped[str] = mapped_column(
        ForeignKey("leaderboards.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    score: Mapped[int] = mapped_column(BigInteger)
    subscore: Mapped[int] = mapped_column(BigInteger)
    order_score: Mapped[int] = mapped_column(BigInteger)
    order_subscore: Mapped[int] = mapped_column(BigInteger)
    game_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    reached_us: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer)


class LeaderboardPeriod(Base):
    """A period of a board that has had records: the list of its seasons, past and current."""

    __tablename__ = "leaderboard_periods"

    board_id: Mapped[str] = mapped_column(
        ForeignKey("leaderboards.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]


class LeaderboardChange(Base):
    """Committed record changes for the other processes' rank indexes, on SQLite.

    SQLite has one writer at a time, so ids grow in commit order and each process reads the
    rows past the last id it saw. Only recent rows are kept; a process that fell further behind
    rebuilds its indexes from the records. PostgreSQL carries the same changes by NOTIFY and
    leaves this table empty.
    """

    __tablename__ = "leaderboard_changes"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    data: Mapped[str] = mapped_column(Text)
