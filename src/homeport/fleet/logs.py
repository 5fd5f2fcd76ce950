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
        """Append, rotating first whenever the file would pass its size; a burst larger than
        a file is cut at line ends where it can be, so each file stays within the size."""
        with contextlib.ExitStack() as stack:
            out = None
            while data:
                room = self.max_bytes - self._size
                if len(data) <= room:
                    piece, data = data, b""
                else:
                    cut = data.rfind(b"\n", 0, max(room, 0)) + 1
                    if cut == 0 and self._size == 0:
                        cut = room  # one line longer than a file: cut it
                    if cut == 0:
                        stack.close()
                        out = None
                        self._rotate()
                        continue
                    piece, data = data[:cut], data[cut:]
                if out is None:
                    out = stack.enter_context(self.path.open("ab"))
                out.write(piece)
                self._size += len(piece)

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
