"""Receiving a chunk: its bytes go to a spool file, hashed on the way, and only a chunk whose
hash is the one the request names is stored. A torn or corrupted upload never becomes an
object, so a snapshot can never name bad bytes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from homeport.errors import PayloadTooLarge

FLUSH_AT = 1024 * 1024


@dataclass(frozen=True)
class Received:
    path: Path
    size: int
    sha256: str
    md5_base64: str


class _Writer:
    """A spool file and its hashes, written from worker threads one batch at a time."""

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(dir=directory, prefix="up-")
        self.path = Path(name)
        self.file: IO[bytes] = os.fdopen(fd, "wb")
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.md5.update(data)
        self.file.write(data)
        self.size += len(data)

    def finish(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


async def receive(stream: AsyncIterator[bytes], directory: Path, max_bytes: int) -> Received:
    """The whole body in a fsynced spool file; the caller owns (and removes) the file."""
    writer = await asyncio.to_thread(_Writer, directory)
    try:
        pending: list[bytes] = []
        pending_size = 0
        async for piece in stream:
            if not piece:
                continue
            if writer.size + pending_size + len(piece) > max_bytes:
                raise PayloadTooLarge(
                    f"A chunk may be at most {max_bytes} bytes", max_bytes=max_bytes
                )
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= FLUSH_AT:
                await asyncio.to_thread(writer.write, b"".join(pending))
                pending, pending_size = [], 0
        if pending:
            await asyncio.to_thread(writer.write, b"".join(pending))
        await asyncio.to_thread(writer.finish)
    except BaseException:
        await asyncio.to_thread(writer.discard)
        raise
    return Received(
        path=writer.path,
        size=writer.size,
        sha256=writer.sha256.hexdigest(),
        md5_base64=base64.b64encode(writer.md5.digest()).decode(),
    )


async def remove(path: Path) -> None:
    await asyncio.to_thread(path.unlink, missing_ok=True)
