"""Leader-only loops: work that must run in one process at a time, whatever the process count.

Workers and replicas share one database; the registry purge (and later the matcher and the
autoscaler) must run once. Leadership is a lock that the database or the operating system frees
by itself when its holder dies: a PostgreSQL advisory lock held on a connection of its own (a
dead process's connection closes, and the server releases the lock), or on SQLite an `flock` on
a file next to the database (the kernel releases it with the process). The others retry every
`check_interval` seconds, so the work moves within a few seconds of the leader's death.

A process that is not the leader connects only for each attempt, rather than holding a second
idle connection per loop: with many workers and replicas those would count against the server's
connection limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from homeport.settings import Settings

log = logging.getLogger("homeport.leader")
QUERY_TIMEOUT = 5.0
STOP_TIMEOUT = 10.0
# Server-side TCP keepalives: when the leader's machine vanishes without closing its connection,
# the server notices within about 25 s (instead of the usual two hours) and frees the lock.
KEEPALIVES = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key; the prefix keeps clear of other applications."""
    digest = hashlib.sha256(f"homeport:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Leadership:
    """One named lock; `try_acquire` never waits for it."""

    def __init__(self, settings: Settings, name: str) -> None:
        # The name becomes part of a file name and of `application_name`.
        if not _NAME.fullmatch(name):
            raise ValueError(f"leadership name {name!r} must match {_NAME.pattern}")
        self._settings = settings
        self.name = name
        self._connection: asyncpg.Connection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self._fd is not None

    @property
    def lock_path(self) -> Path:
        """SQLite only: the file whose `flock` is the leadership."""
        database = make_url(self._settings.database_url).database or "homeport.db"
        return Path(f"{database}.{self.name}.lock")

    async def try_acquire(self) -> bool:
        if self.held:
            return True
        if self._settings.is_sqlite:
            return self._try_flock()
        return await self._try_advisory_lock()

    async def still_held(self) -> bool:
        if self._fd is not None:
            return self._lock_file_in_place()
        connection = self._connection
        if connection is None:
            return False
        try:
            await connection.fetchval("SELECT 1", timeout=QUERY_TIMEOUT)
        except Exception:
            log.warning("leadership %s lost its database connection", self.name)
            self._connection = None
            await _close(connection)
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
            # The server releases a session's advisory locks when the session ends.
            await _close(connection)

    def _try_flock(self) -> bool:
        # LOCK_NB never waits, and opening a local file does not either: no thread needed.
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _lock_file_in_place(self) -> bool:
        """Whether the locked file is still the one at `lock_path`.

        If someone deleted it, the next process would lock a new file of the same name and lead
        too; giving up here keeps it to one leader.
        """
        assert self._fd is not None
        with contextlib.suppress(OSError):
            mine, there = os.fstat(self._fd), os.stat(self.lock_path)
            if (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino):
                return True
        log.warning("leadership %s: its lock file was removed; giving it up", self.name)
        os.close(self._fd)
        self._fd = None
        return False

    async def _try_advisory_lock(self) -> bool:
        dsn = make_url(self._settings.database_url).set(drivername="postgresql")
        connection = await asyncpg.connect(
            dsn.render_as_string(hide_password=False),
            timeout=QUERY_TIMEOUT,
            server_settings={"application_name": f"homeport-leader-{self.name}", **KEEPALIVES},
        )
        try:
            got = await connection.fetchval(
                "SELECT pg_try_advisory_lock($1)", lock_key(self.name), timeout=QUERY_TIMEOUT
            )
        except BaseException:
            await _close(connection)
            raise
        if not got:
            await _close(connection)
            return False
        self._connection = connection
        return True


async def _close(connection: asyncpg.Connection) -> None:
    """Close politely, but never wait long: stopping must not hang on a dead server."""
    try:
        await asyncio.wait_for(connection.close(), QUERY_TIMEOUT)
    except asyncio.CancelledError:
        connection.terminate()
        raise
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
        self._unreachable = False

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
            done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
            if not done:
                log.warning("%s: work did not stop within %s s", self.name, STOP_TIMEOUT)
            elif not task.cancelled() and task.exception() is not None:
                log.error("%s: leader loop had failed", self.name, exc_info=task.exception())
        await self.leadership.release()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_check = next_work = loop.time()
        while True:
            if loop.time() >= next_check:
                next_check = loop.time() + self.check_interval
                if await self._check():
                    next_work = loop.time()
            if self.leadership.held and loop.time() >= next_work:
                try:
                    await self.work()
                except Exception:
                    log.exception("%s: leader work failed", self.name)
                next_work = loop.time() + self.interval
            wake = min(next_check, next_work) if self.leadership.held else next_check
            await asyncio.sleep(max(0.0, wake - loop.time()))

    async def _check(self) -> bool:
        """Keep or try to take the leadership; True when it was just taken."""
        if self.leadership.held:
            if not await self.leadership.still_held():
                log.warning("%s: this process is no longer the leader", self.name)
            return False
        try:
            gained = await self.leadership.try_acquire()
        except Exception:
            # The database is down or unreachable: say so once, not every check.
            if not self._unreachable:
                log.warning("%s: cannot reach the lock", self.name, exc_info=True)
            self._unreachable = True
            return False
        if self._unreachable:
            log.info("%s: the lock is reachable again", self.name)
        self._unreachable = False
        if gained:
            log.info("%s: this process is now the leader", self.name)
        return gained
