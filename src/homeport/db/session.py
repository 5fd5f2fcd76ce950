"""Unit-of-work scope: commit once on success, roll back on any error.

Services never commit; the caller that owns the transaction does, so a request either writes all
of its rows or none of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
