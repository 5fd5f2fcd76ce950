"""World saves: a first full save, an incremental one, and a load after a restart.

A dedicated server saves its world every few minutes. Most of the world has not changed since
the last save, so a save asks which chunks the backend lacks, uploads only those and commits a
manifest; a crashed server's replacement loads the last complete snapshot. Target: with a
64 MiB world of 1,024 chunks of 64 KiB, an incremental save of 5 % of the chunks uploads only
the changed ones and completes in under 1 s on the `local` storage.

For each storage the benchmark starts a fresh `homeport serve` (2 workers, SQLite unless
`--db postgresql`), creates a key with scope `worlds`, and over HTTP/1.1 keep-alive
connections (`--concurrency`, default 8, uploads in parallel as a server's save thread would):

1. first save: `POST .../chunks/missing` for all 1,024 hashes, upload them all, commit the
   manifest; prints MiB/s of the whole save.
2. incremental saves (`--rounds`, default 3): 5 % of the chunks get new random bytes; ask
   which are missing (must be exactly the changed ones), upload those, commit the changes
   against the previous snapshot; prints the time of each.
3. load: `GET /v1/worlds/{world}` and every chunk, each checked against its hash; prints the
   time and MiB/s.

`--storage s3` runs the same against a moto S3 server it starts on loopback (needs
`moto[server]`, as the test extra installs), which shows the protocol's cost, not AWS's.

    python bench/worlds.py
    python bench/worlds.py --storage both --db postgresql --chunks 256

The exit status is 1 when a save uploads a chunk that had not changed or a load reads back
other bytes; the PASS/MISS line is informational.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator

import httpx
from common import BenchError, Live, create_key, free_port, start

TARGET_INCREMENTAL_S = 1.0
MIB = 1024 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def moto(work_dir: str) -> Iterator[str]:
    """A moto S3 server on loopback with one bucket; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(os.path.join(work_dir, "moto.log"), "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.put(f"{url}/bench-worlds", timeout=1.0).status_code < 500:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError("the moto S3 server did not start")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


class Saver:
    """A dedicated server's save and load, over one pool of connections."""

    def __init__(self, client: httpx.AsyncClient, world: str, concurrency: int) -> None:
        self.client = client
        self.world = world
        self.limit = asyncio.Semaphore(concurrency)
        self.phases: tuple[float, ...] = ()
        """The last save's (ask, uploads, commit) seconds."""

    async def _upload(self, data: bytes) -> None:
        async with self.limit:
            r = await self.client.put(
                f"/v1/worlds/{self.world}/chunks/{sha(data)}",
                content=data,
                headers={"content-type": "application/octet-stream"},
            )
        if r.status_code != 201:
            raise BenchError(f"upload answered {r.status_code}: {r.text[:200]}")

    async def save(self, chunks: dict[str, bytes], base: int | None, changed: set[str]) -> int:
        """Save; returns how many chunks were uploaded."""
        wanted = {cid: sha(data) for cid, data in chunks.items()}
        asked = await self.client.post(
            f"/v1/worlds/{self.world}/chunks/missing", json={"hashes": list(wanted.values())}
        )
        asked.raise_for_status()
        missing = set(asked.json()["missing"])
        by_hash = {sha(data): data for data in chunks.values()}
        asked_at = time.perf_counter()
        await asyncio.gather(*(self._upload(by_hash[h]) for h in missing))
        uploaded_at = time.perf_counter()
        if base is None:
            body: dict[str, object] = {"manifest": wanted}
        else:
            body = {"base": base, "changes": {cid: wanted[cid] for cid in changed}}
        committed = await self.client.post(f"/v1/worlds/{self.world}/snapshots", json=body)
        if committed.status_code != 201:
            raise BenchError(f"commit answered {committed.status_code}: {committed.text[:200]}")
        self.phases = (asked.elapsed.total_seconds(), uploaded_at - asked_at)
        self.phases += (committed.elapsed.total_seconds(),)
        return len(missing)

    async def _read(self, digest: str) -> bytes:
        async with self.limit:
            r = await self.client.get(f"/v1/worlds/{self.world}/chunks/{digest}")
        r.raise_for_status()
        if sha(r.content) != digest:
            raise BenchError(f"chunk {digest} read back other bytes")
        return r.content

    async def load(self) -> dict[str, bytes]:
        detail = await self.client.get(f"/v1/worlds/{self.world}")
        detail.raise_for_status()
        manifest: dict[str, str] = detail.json()["latest"]["manifest"]
        read = await asyncio.gather(*(self._read(d) for d in manifest.values()))
        return dict(zip(manifest, read, strict=True))


async def measure(live: Live, key: str, args: argparse.Namespace) -> bool:
    rng = random.Random(7)
    chunks = {f"{i % 32},{i // 32}": os.urandom(args.chunk_kib * 1024) for i in range(args.chunks)}
    size_mib = args.chunks * args.chunk_kib / 1024
    limits = httpx.Limits(max_connections=args.concurrency)
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=live.base, headers=headers, limits=limits, timeout=60
    ) as client:
        saver = Saver(client, f"bench-{uuid.uuid4().hex[:8]}", args.concurrency)
        began = time.perf_counter()
        uploaded = await saver.save(chunks, None, set())
        first = time.perf_counter() - began
        print(
            f"  first save   {size_mib:7.1f} MiB in {first:6.2f} s = {size_mib / first:6.1f} MiB/s"
        )
        ok = uploaded == len(chunks)
        times = []
        phases = []
        n_changed = max(1, round(args.chunks * args.changed / 100))
        for round_ in range(args.rounds):
            changed = set(rng.sample(sorted(chunks), n_changed))
            for cid in changed:
                chunks[cid] = os.urandom(args.chunk_kib * 1024)
            began = time.perf_counter()
            uploaded = await saver.save(chunks, round_ + 1, changed)
            times.append(time.perf_counter() - began)
            phases.append(saver.phases)
            if uploaded != n_changed:
                print(f"  WRONG: uploaded {uploaded} chunks, {n_changed} changed")
                ok = False
        shown = ", ".join(f"{t * 1000:.0f} ms" for t in times)
        print(f"  incremental  {n_changed} of {args.chunks} chunks changed: {shown}")
        split = "; ".join(
            f"ask {a * 1000:.0f} + upload {u * 1000:.0f} + commit {c * 1000:.0f} ms"
            for a, u, c in phases
        )
        print(f"               ({split})")
        began = time.perf_counter()
        loaded = await saver.load()
        took = time.perf_counter() - began
        print(f"  load         {size_mib:7.1f} MiB in {took:6.2f} s = {size_mib / took:6.1f} MiB/s")
        if loaded != chunks:
            print("  WRONG: the load is not the last save")
            ok = False
    worst = max(times)
    verdict = "PASS" if worst < TARGET_INCREMENTAL_S else "MISS"
    print(
        f"  {verdict}: slowest incremental save {worst * 1000:.0f} ms"
        f" (median {statistics.median(times) * 1000:.0f} ms), target < {TARGET_INCREMENTAL_S:g} s"
    )
    return ok


def run(storage: str, args: argparse.Namespace) -> bool:
    print(f"{storage} storage, {args.db}, {args.workers} workers")
    with contextlib.ExitStack() as stack:
        settings = {"HOMEPORT_FLEET_ENABLED": "false", "HOMEPORT_WORLDS_STORAGE": storage}
        if storage == "s3":
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-moto-"))
            url = stack.enter_context(moto(scratch))
            settings.update(
                HOMEPORT_WORLDS_S3_BUCKET="bench-worlds",
                HOMEPORT_WORLDS_S3_ENDPOINT_URL=url,
                HOMEPORT_WORLDS_S3_ACCESS_KEY_ID="bench",
                HOMEPORT_WORLDS_S3_SECRET_ACCESS_KEY="bench",  # noqa: S106 (moto takes any)
            )
        live = start(stack, args.db, args.workers, settings)
        key = create_key(live, "worlds")
        return asyncio.run(measure(live, key, args))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", choices=("local", "s3", "both"), default="local")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunks", type=int, default=1024)
    parser.add_argument("--chunk-kib", type=int, default=64)
    parser.add_argument("--changed", type=float, default=5.0, help="percent changed per save")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    storages = ("local", "s3") if args.storage == "both" else (args.storage,)
    ok = True
    for storage in storages:
        try:
            ok = run(storage, args) and ok
        except BenchError as exc:
            print(f"  ERROR: {exc}")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
