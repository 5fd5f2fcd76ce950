"""Creating, reading and deleting boards, and listing their periods.

Deleting a board deletes its records (a reset never does: it only starts a new period). The
deletion goes out on the change feed in the same transaction, so every process drops the
board's rank indexes once it commits, whichever process or command made it.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.leaderboards import feed
from homeport.leaderboards.boards import BoardRule
from homeport.leaderboards.errors import LeaderboardExists, LeaderboardNotFound, PeriodNotFound
from homeport.leaderboards.feed import Change
from homeport.leaderboards.models import Leaderboard, LeaderboardPeriod, LeaderboardRecord
from homeport.leaderboards.periods import Period
from homeport.leaderboards.schemas import BoardCreate

PERIODS_LISTED = 500


async def create_board(session: AsyncSession, clock: Clock, body: BoardCreate) -> Leaderboard:
    if await session.get(Leaderboard, body.id) is not None:
        raise LeaderboardExists()
    row = Leaderboard(
        id=body.id,
        sort_order=body.order.value,
        operator=body.operator.value,
        reset=body.reset.value,
        cron=body.cron,
        created_at=clock.now(),
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise LeaderboardExists() from exc
    return row


async def list_boards(session: AsyncSession) -> list[Leaderboard]:
    return list(await session.scalars(select(Leaderboard).order_by(Leaderboard.id)))


async def get_board_or_raise(session: AsyncSession, board_id: str) -> Leaderboard:
    row = await session.get(Leaderboard, board_id)
    if row is None:
        raise LeaderboardNotFound()
    return row


async def delete_board(session: AsyncSession, board_id: str) -> None:
    """Delete a board with all its records and periods."""
    row = await get_board_or_raise(session, board_id)
    await session.execute(delete(LeaderboardRecord).where(LeaderboardRecord.board_id == row.id))
    await session.execute(delete(LeaderboardPeriod).where(LeaderboardPeriod.board_id == row.id))
    await session.delete(row)
    await feed.publish(session, [Change(row.id, "", None, 0)])


async def list_periods(
    session: AsyncSession, rule: BoardRule, current: Period
) -> list[tuple[Period, bool]]:
    """The board's periods that have records, and the current one, newest first."""
    rows = await session.execute(
        select(LeaderboardPeriod.period, LeaderboardPeriod.starts_at, LeaderboardPeriod.ends_at)
        .where(LeaderboardPeriod.board_id == rule.id)
        .order_by(LeaderboardPeriod.period.desc())
        .limit(PERIODS_LISTED)
    )
    periods = [Period(row.period, row.starts_at, row.ends_at) for row in rows]
    if current.key not in {p.key for p in periods}:
        periods.append(current)
    periods.sort(key=lambda p: p.key, reverse=True)
    return [(p, p.key == current.key) for p in periods]


async def check_period(session: AsyncSession, rule: BoardRule, key: str) -> None:
    """Refuse a period the board has never had records in (PeriodNotFound)."""
    found = await session.scalar(
        select(LeaderboardPeriod.period).where(
            LeaderboardPeriod.board_id == rule.id, LeaderboardPeriod.period == key
        )
    )
    if found is None:
        raise PeriodNotFound()
