"""What the worlds capability holds for the app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.errors import HomeportError
from homeport.settings import Settings
from homeport.worlds.access import FleetOfServer
from homeport.worlds.errors import StorageUnavailable
from homeport.worlds.storage import ChunkStorage, open_storage

log = logging.getLogger("homeport.worlds")


@dataclass
class Worlds:
    settings: Settings
    clock: Clock
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    storage: ChunkStorage
    fleets: FleetOfServer
    _started: bool = False
    _starting: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def build(
        cls,
        settings: Settings,
        clock: Clock,
        sessions: async_sessionmaker[AsyncSession],
        read_sessions: async_sessionmaker[AsyncSession],
    ) -> Worlds:
        storage = open_storage(settings)
        return cls(settings, clock, sessions, read_sessions, storage, FleetOfServer(read_sessions))

    async def started(self) -> ChunkStorage:
        """The storage, started on first use (an app served without its lifespan, say)."""
        if not self._started:
            async with self._starting:
                if not self._started:
                    await self.storage.start()
                    stale = self.settings.worlds_chunk_timeout + 60
                    await asyncio.to_thread(_remove_stale, self.storage.spool_dir, stale)
                    self._started = True
        return self.storage

    async def close(self) -> None:
        if self._started:
            await self.storage.close()
            self._started = False

    @asynccontextmanager
    async def storage_errors(self) -> AsyncIterator[None]:
        """Storage failures (disk full, S3 unreachable) as a 503 the caller retries."""
        try:
            yield
        except HomeportError:
            raise
        except Exception as exc:
            log.warning("world storage failed", exc_info=True)
            raise StorageUnavailable() from exc


def _remove_stale(spool_dir: Path, older_than: float) -> None:
    """Spool files a crashed process left. Other workers share the directory, so only those
    older than any upload may take are removed."""
    cutoff = time.time() - older_than
    for path in spool_dir.glob("up-*"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
