"""Server output captured into size-rotated files (`NAME.log`, `NAME.log.1`, ...).

The output comes through a pipe rather than straight into a file, so rotation can happen
between two reads without the process knowing; the writes run off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

CHUNK = 65_536


class RotatingLog:
    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._size = path.stat().st_size if path.exists() else 0

    def write(self, data: bytes) -> None:
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        with self.path.open("ab") as out:
            out.write(data)
        self._size += len(data)

    def _rotate(self) -> None:
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._size = 0

    async def pump(self, stream: asyncio.StreamReader) -> None:
        """Copy `stream` into the log until it ends (the process closed its output)."""
        with contextlib.suppress(ConnectionError):
            while chunk := await stream.read(CHUNK):
                await asyncio.to_thread(self.write, chunk)
