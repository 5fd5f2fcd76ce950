"""Unit-of-work scope: commit once on success, roll back on any error.

Services never commit; the caller that owns the transaction does, so a request either writes all
of its rows or none of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport.errors import HomeportError


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with factory() as session:
        try:
            yield session
        except HomeportError as exc:
            # Some refusals record why they refused (a replayed refresh token revokes its
            # session): those writes are kept, everything else is undone.
            await (session.commit() if exc.keeps_writes else session.rollback())
            raise
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


async def retry_on_conflict(
    sessions: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[None]],
    attempts: int = 3,
) -> None:
    """Run `work` in a transaction of its own, again if it loses an insert race.

    Every process stores the configured rows at start, so two starting at once may insert the
    same new row; the loser's transaction fails on the unique key, and on its next try it finds
    the row stored and updates it instead.
    """
    for attempt in range(attempts):
        try:
            async with unit_of_work(sessions) as session:
                await work(session)
            return
        except IntegrityError:
            if attempt == attempts - 1:
                raise
