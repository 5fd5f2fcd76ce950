"""Propagating revocations to every process's auth caches through the database.

Writers record an `AuthEvent` in the same transaction as the change. Each process reads the
events of the last moments every `auth_cache_ttl` seconds and drops the cache entries they name.
Polls overlap by `OVERLAP` so that an event whose transaction committed late, or was stamped by a
replica with a slightly different clock, is still seen; applying an event twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.identity.caches import AuthCaches
from homeport.identity.models import AuthEvent

log = logging.getLogger("homeport.identity")
OVERLAP = timedelta(seconds=30)
KEEP = timedelta(hours=1)
PRUNE_EVERY = 300.0


class EventKind(StrEnum):
    SESSION = "session"
    ACCOUNT = "account"
    KEY = "key"


def record(session: AsyncSession, clock: Clock, kind: EventKind, subject: str) -> None:
    session.add(AuthEvent(kind=kind.value, subject=subject, created_at=clock.now()))


class AuthEventFeed:
    def __init__(self, clock: Clock, caches: AuthCaches, interval: float) -> None:
        self._clock = clock
        self._caches = caches
        self._interval = interval
        self._next_poll = float("-inf")
        self._next_prune = clock.monotonic() + PRUNE_EVERY
        self._since: datetime | None = None
        self._lock = asyncio.Lock()

    async def poll_if_due(
        self,
        read: async_sessionmaker[AsyncSession],
        write: async_sessionmaker[AsyncSession],
    ) -> None:
        if self._interval <= 0 or self._clock.monotonic() < self._next_poll or self._lock.locked():
            return
        async with self._lock:
            self._next_poll = self._clock.monotonic() + self._interval
            started = self._clock.now()
            since = self._since or started - OVERLAP
            async with read() as session:
                rows = (
                    await session.execute(
                        select(AuthEvent.kind, AuthEvent.subject).where(
                            AuthEvent.created_at >= since
                        )
                    )
                ).all()
            for kind, subject in rows:
                self._apply(kind, subject)
            self._since = started - OVERLAP
            if self._clock.monotonic() >= self._next_prune:
                self._next_prune = self._clock.monotonic() + PRUNE_EVERY
                await self._prune(write, started - KEEP)

    @staticmethod
    async def _prune(write: async_sessionmaker[AsyncSession], before: datetime) -> None:
        # Housekeeping must never fail the request that happened to trigger it.
        try:
            async with write() as session, session.begin():
                await session.execute(delete(AuthEvent).where(AuthEvent.created_at < before))
        except Exception:
            log.warning("could not prune old auth events", exc_info=True)

    def _apply(self, kind: str, subject: str) -> None:
        try:
            if kind == EventKind.SESSION:
                self._caches.forget_session(uuid.UUID(subject))
            elif kind == EventKind.ACCOUNT:
                self._caches.forget_account(uuid.UUID(subject))
            elif kind == EventKind.KEY:
                self._caches.forget_key(subject)
        except ValueError:
            log.warning("ignoring malformed auth event %s %r", kind, subject)
