"""The sim server's world: a grid of cells players build on, saved as chunks every interval,
at the stop, and to a local backup, so a server that crashes comes back with the last complete
save (from Homeport, or from its own disk when Homeport cannot be reached).

The grid is `SIZE` x `SIZE` one-byte cells cut into square chunks of `CHUNK` x `CHUNK`; chunk
ids are "<cx>,<cy>". A save sends only the chunks changed since the last one, as changes
against the snapshot it builds on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from pathlib import Path

from homeport.sim.backend import Problem, Unavailable, WorldCalls

SIZE = 64
CHUNK = 16
NO_WORLD = ("ERR", "no-world")
log = logging.getLogger("homeport.sim")


def chunk_of(x: int, y: int) -> tuple[str, int]:
    """The chunk id of a cell and the cell's offset in it."""
    return f"{x // CHUNK},{y // CHUNK}", (y % CHUNK) * CHUNK + x % CHUNK


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SimWorld:
    def __init__(self, calls: WorldCalls, backup: Path | None) -> None:
        self.calls = calls
        self.backup = backup
        self.chunks = {
            f"{cx},{cy}": bytearray(CHUNK * CHUNK)
            for cx in range(SIZE // CHUNK)
            for cy in range(SIZE // CHUNK)
        }
        self.base: int | None = None
        """The snapshot the next save builds on; None before the first one."""
        self.dirty: set[str] = set()
        self._saving = asyncio.Lock()

    def cell(self, x: int, y: int) -> int:
        chunk_id, offset = chunk_of(x, y)
        return self.chunks[chunk_id][offset]

    def build(self, x: int, y: int) -> int:
        """Raise a cell by one (wrapping at 256); its new value."""
        chunk_id, offset = chunk_of(x, y)
        chunk = self.chunks[chunk_id]
        chunk[offset] = (chunk[offset] + 1) % 256
        self.dirty.add(chunk_id)
        return chunk[offset]

    def answer(self, command: str, argument: str) -> tuple[object, ...]:
        """A player's BUILD or LOOK, as the words of the answer line."""
        parts = argument.split()
        if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
            return ("ERR", "invalid-cell")
        x, y = int(parts[0]), int(parts[1])
        if not (0 <= x < SIZE and 0 <= y < SIZE):
            return ("ERR", "invalid-cell")
        value = self.build(x, y) if command == "BUILD" else self.cell(x, y)
        return ("CELL", x, y, value)

    async def keep_saving(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.save("periodic")

    async def finish(self) -> bool:
        """The last save, then the lease back, so a successor need not wait for it to lapse."""
        if not await self.save("stop"):
            return False
        try:
            await self.calls.release()
        except (Unavailable, Problem) as exc:
            log.warning("could not give the world's lease back: %s", exc)
        return True

    async def load(self) -> str:
        """The last complete save: Homeport's, else the local backup's; where it came from."""
        try:
            latest = await self.calls.latest()
            if latest is None:
                return "new"
            loaded = {}
            for chunk_id, digest in latest["manifest"].items():
                data = await self.calls.chunk(digest)
                if sha(data) != digest:
                    raise Unavailable(f"chunk {chunk_id} came back with other bytes")
                loaded[chunk_id] = bytearray(data)
        except (Unavailable, Problem) as exc:
            if self._read_backup():
                log.warning("world: Homeport unreachable (%s); loaded the local backup", exc)
                return "backup"
            raise
        self.chunks.update(loaded)
        self.base = int(latest["seq"])
        return f"snapshot {self.base}"

    async def save(self, reason: str) -> bool:
        """Save what changed; True once Homeport has it (or nothing had changed)."""
        async with self._saving:
            if not self.dirty and self.base is not None:
                return True
            changed = sorted(self.dirty) if self.base is not None else sorted(self.chunks)
            taken = {cid: bytes(self.chunks[cid]) for cid in changed}
            self.dirty.difference_update(changed)  # builds from now on dirty them again
            try:
                seq = await self._send(taken)
            except (Unavailable, Problem) as exc:
                self.dirty.update(changed)
                log.warning("world save (%s) failed: %s", reason, exc)
                return False
            self.base = seq
            await asyncio.to_thread(self._write_backup)
            log.info("world saved (%s): snapshot %d, %d chunks sent", reason, seq, len(taken))
            return True

    async def _send(self, taken: dict[str, bytes]) -> int:
        hashes = {cid: sha(data) for cid, data in taken.items()}
        missing = set(await self.calls.missing(sorted(set(hashes.values()))))
        for cid, data in taken.items():
            if hashes[cid] in missing:
                await self.calls.upload(hashes[cid], data)
                missing.discard(hashes[cid])
        if self.base is None:
            body: dict[str, object] = {"manifest": hashes}
        else:
            body = {"base": self.base, "changes": hashes}
        return int((await self.calls.commit(body))["seq"])

    def _write_backup(self) -> None:
        """The saved world on this machine's disk, replaced whole (write, fsync, rename)."""
        if self.backup is None:
            return
        self.backup.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.backup.with_suffix(".tmp")
        content = {"base": self.base, "chunks": {k: v.hex() for k, v in self.chunks.items()}}
        with temporary.open("w") as handle:
            json.dump(content, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.backup)

    def _read_backup(self) -> bool:
        if self.backup is None or not self.backup.is_file():
            return False
        content = json.loads(self.backup.read_text())
        for chunk_id, data in content["chunks"].items():
            if chunk_id in self.chunks:
                self.chunks[chunk_id] = bytearray(bytes.fromhex(data))
        self.base = content["base"]
        return True
