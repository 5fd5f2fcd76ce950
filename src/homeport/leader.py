"""Leader-only loops: work that must run in one process at a time, whatever the process count.

Workers and replicas share one database; the registry purge (and later the matcher and the
autoscaler) must run once. Leadership is a lock the operating system or the database frees by
itself when its holder dies: a PostgreSQL advisory lock held on a dedicated connection (a dead
process's connection closes, and the server releases the lock), or on SQLite an `flock` on a
file next to the database (the kernel releases it with the process). Others retry every
`check_interval` seconds, so the work moves within a few seconds of the leader's death.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from homeport.settings import Settings

log = logging.getLogger("homeport.leader")
QUERY_TIMEOUT = 5.0


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    digest = hashlib.sha256(f"homeport:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Leadership:
    """One named lock; `try_acquire` never waits for it."""

    def __init__(self, settings: Settings, name: str) -> None:
        self._settings = settings
        self.name = name
        self._connection: asyncpg.Connection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self._fd is not None

    def _lock_path(self) -> Path:
        database = make_url(self._settings.database_url).database or "homeport.db"
        return Path(f"{database}.{self.name}.lock")

    async def try_acquire(self) -> bool:
        if self.held:
            return True
        if self._settings.is_sqlite:
            return self._try_flock()
        return await self._try_advisory()

    def _try_flock(self) -> bool:
        fd = os.open(self._lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def _try_advisory(self) -> bool:
        dsn = self._settings.database_url.replace("+asyncpg", "", 1)
        connection = await asyncpg.connect(dsn, timeout=QUERY_TIMEOUT)
        try:
            got = await connection.fetchval(
                "SELECT pg_try_advisory_lock($1)", lock_key(self.name), timeout=QUERY_TIMEOUT
            )
        except BaseException:
            await self._close(connection)
            raise
        if not got:
            await self._close(connection)
            return False
        self._connection = connection
        return True

    async def still_held(self) -> bool:
        if self._fd is not None:
            return True
        connection = self._connection
        if connection is None:
            return False
        try:
            await connection.fetchval("SELECT 1", timeout=QUERY_TIMEOUT)
        except Exception:
            log.warning("leadership %s lost its connection", self.name)
            self._connection = None
            await self._close(connection)
            return False
        return True

    async def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        if self._connection is not None:
            connection, self._connection = self._connection, None
            # Closing the connection releases its advisory locks.
            await self._close(connection)

    @staticmethod
    async def _close(connection: asyncpg.Connection) -> None:
        try:
            await asyncio.wait_for(connection.close(), QUERY_TIMEOUT)
        except Exception:
            connection.terminate()


class LeaderLoop:
    """Runs `work` every `interval` seconds while this process holds the leadership."""

    def __init__(
        self,
        leadership: Leadership,
        *,
        interval: float,
        work: Callable[[], Awaitable[None]],
        check_interval: float,
        name: str,
    ) -> None:
        self.leadership = leadership
        self.interval = interval
        self.work = work
        self.check_interval = check_interval
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        return self.leadership.held

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"leader:{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.leadership.release()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_work = loop.time()
        while True:
            try:
                if not await self.leadership.still_held() and await self.leadership.try_acquire():
                    log.info("%s: this process is now the leader", self.name)
                    next_work = loop.time()
                if self.leadership.held and loop.time() >= next_work:
                    await self.work()
                    next_work = loop.time() + self.interval
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: leader loop step failed", self.name)
                next_work = loop.time() + self.interval
            wait = self.check_interval
            if self.leadership.held:
                wait = max(0.0, min(wait, next_work - loop.time()))
            await asyncio.sleep(wait)
