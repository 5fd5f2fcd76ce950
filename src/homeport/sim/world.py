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
        self.saved: dict[str, bytes] = {}
        """Each chunk as Homeport last confirmed it: what the backup holds."""
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

    async def load(self, lease_wait: float = 45.0) -> str:
        """Take the world's lease, then load the last complete save: Homeport's, else (when
        Homeport cannot be reached) the local backup's; where it came from. The lease comes
        first, so no other server can save after what this one loads."""
        try:
            await self._take_lease(lease_wait)
            latest = await self.calls.latest()
            if latest is None:
                return "new"
            loaded = {}
            for chunk_id, digest in latest["manifest"].items():
                data = await self.calls.chunk(digest)
                if sha(data) != digest:
                    raise Unavailable(f"chunk {chunk_id} came back with other bytes")
                loaded[chunk_id] = bytearray(data)
        except Unavailable as exc:
            if self._read_backup():
                log.warning("world: Homeport unreachable (%s); loaded the local backup", exc)
                return "backup"
            raise
        self.chunks.update(loaded)
        self.saved = {cid: bytes(data) for cid, data in self.chunks.items()}
        self.base = int(latest["seq"])
        return f"snapshot {self.base}"

    async def _take_lease(self, wait: float) -> None:
        """The lease, waiting while a predecessor that has not ended holds it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            try:
                await self.calls.lease()
                return
            except Problem as problem:
                if problem.slug != "world-leased" or loop.time() > deadline:
                    raise
                pause = float(problem.body.get("retry_after") or 1)
                log.info("world leased by %s; waiting", problem.body.get("holder"))
                await asyncio.sleep(min(pause, 5.0))

    async def save(self, reason: str) -> bool:
        """Save what changed; True once Homeport has it (or nothing had changed)."""
        async with self._saving:
            if not self.dirty and self.base is not None:
                return True
            changed = sorted(self.dirty) if self.base is not None else sorted(self.chunks)
            taken = {cid: bytes(self.chunks[cid]) for cid in changed}
            self.dirty.difference_update(changed)  # builds from now on dirty them again
            try:
                try:
                    seq = await self._send(taken, self.base)
                except Problem as problem:
                    if problem.slug != "snapshot-conflict":
                        raise
                    # The latest is not the snapshot this server last saved: an answer was
                    # lost after its commit, or it started from an older backup. It holds the
                    # lease, so its world is the truth: send all of it on the new latest.
                    taken = {cid: bytes(data) for cid, data in self.chunks.items()}
                    seq = await self._send(taken, problem.body.get("latest"), whole=True)
            except (Unavailable, Problem) as exc:
                self.dirty.update(changed)
                log.warning("world save (%s) failed: %s", reason, exc)
                return False
            self.base = seq
            self.saved.update(taken)
            content = {"base": seq, "chunks": {k: v.hex() for k, v in self.saved.items()}}
            await asyncio.to_thread(self._write_backup, content)
            log.info("world saved (%s): snapshot %d, %d chunks sent", reason, seq, len(taken))
            return True

    async def _send(self, taken: dict[str, bytes], base: int | None, *, whole: bool = False) -> int:
        hashes = {cid: sha(data) for cid, data in taken.items()}
        missing = set(await self.calls.missing(sorted(set(hashes.values()))))
        for cid, data in taken.items():
            if hashes[cid] in missing:
                await self.calls.upload(hashes[cid], data)
                missing.discard(hashes[cid])
        body: dict[str, object] = {"manifest": hashes}
        if base is not None:
            body = (
                {"base": base, "manifest": hashes} if whole else {"base": base, "changes": hashes}
            )
        return int((await self.calls.commit(body))["seq"])

    def _write_backup(self, content: dict[str, object]) -> None:
        """The last saved world on this machine's disk, replaced whole (write, fsync, rename):
        what Homeport has, not what players built since."""
        if self.backup is None:
            return
        self.backup.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.backup.with_suffix(".tmp")
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
                self.saved[chunk_id] = bytes.fromhex(data)
        self.base = content["base"]
        return True
