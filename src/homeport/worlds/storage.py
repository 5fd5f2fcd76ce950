"""Where chunk bytes live: a directory (the embedded default) or an S3-compatible store.

The database says which chunks exist and which snapshots name them; storage only holds bytes
under keys the database chose. A chunk's key carries a random suffix besides its hash, so an
object the garbage collector is deleting can never be one a new upload has just written: every
upload writes an object of its own, and only the row that wins names it.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from homeport.settings import Settings

READ_BLOCK = 256 * 1024
KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}/[0-9a-f]{2}/[0-9a-f]{64}-[0-9a-f]{12}")
"""What `object_key` makes; nothing else is ever a path under the storage root."""


def object_key(world: str, sha256: str) -> str:
    """A new, unique key for one upload of a chunk."""
    return f"{world}/{sha256[:2]}/{sha256}-{secrets.token_hex(6)}"


class ChunkStorage(ABC):
    """The object store behind worlds. Methods are safe to call concurrently."""

    name: str

    @property
    @abstractmethod
    def spool_dir(self) -> Path:
        """Where uploads are received and checked before `store` (a local directory)."""

    @abstractmethod
    async def start(self) -> None:
        """Open connections; called once before use."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def store(self, key: str, spool: Path, size: int) -> None:
        """Make the checked spool file the object `key`, durably, and consume the spool file.
        On failure the object does not exist and the spool file may remain for the caller."""

    @abstractmethod
    def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes [start, end) of the object, in blocks."""

    @abstractmethod
    async def delete(self, keys: Sequence[str]) -> None:
        """Delete objects; keys that do not exist are not an error."""

    @abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether the object is there (for checks and tests; requests go by the database)."""


class LocalStorage(ChunkStorage):
    """Objects as files under one directory. A stored object is renamed into place from a
    spool file on the same filesystem after both were fsynced, so a crash leaves either the
    whole chunk or none of it."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._spool = self.root / ".spool"
        self._durable: set[Path] = set()
        """Directories whose own entries this process has made durable (fsynced parents)."""

    @property
    def spool_dir(self) -> Path:
        return self._spool

    async def start(self) -> None:
        await asyncio.to_thread(self._spool.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        """Nothing is held open between calls."""

    def _path(self, key: str) -> Path:
        # Checked as text, not resolved: resolving touches the disk, on the event loop.
        if not KEY.fullmatch(key) or ".." in key:
            raise ValueError(f"not an object key: {key!r}")
        return self.root / key

    async def store(self, key: str, spool: Path, size: int) -> None:
        await asyncio.to_thread(self._store, self._path(key), spool)

    def _store(self, target: Path, spool: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(spool, target)
        _fsync_dir(target.parent)
        # The directories' own entries too, the first time this process uses them, whoever
        # made them: another upload may have made them a moment ago and not fsynced yet.
        if target.parent not in self._durable:
            _fsync_dir(target.parent.parent)
            _fsync_dir(target.parent.parent.parent)
            self._durable.add(target.parent)

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self._path(key), "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            left = end - start
            while left > 0:
                block = await asyncio.to_thread(handle.read, min(READ_BLOCK, left))
                if not block:
                    raise OSError(f"object {key} ended {left} bytes early")
                left -= len(block)
                yield block
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, keys: Sequence[str]) -> None:
        paths = [self._path(key) for key in keys]
        await asyncio.to_thread(_unlink_all, paths)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_storage(settings: Settings) -> ChunkStorage:
    """The storage the settings choose (not started yet)."""
    if settings.worlds_storage == "s3":
        from homeport.worlds.storage_s3 import S3Storage  # the optional dependency, only here

        return S3Storage.from_settings(settings)
    return LocalStorage(settings.worlds_dir)
