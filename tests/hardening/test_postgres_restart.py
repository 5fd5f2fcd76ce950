"""PostgreSQL restarted under load: Homeport answers 503 while it is gone, reports not ready,
and comes back by itself when it returns; every acknowledged write is kept."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from homeport.db import migrate
from homeport.settings import Settings
from tests.hardening.load_writers import Load
from tests.hardening.test_durability import KillableServer, _check_after_restart, _setup

ROOT = Path(__file__).resolve().parents[2]
PG_CLUSTER = ROOT / "scripts" / "pg-cluster"


def _cluster(command: str, directory: Path) -> str:
    done = subprocess.run(
        [str(PG_CLUSTER), command, str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",  # the cluster runs as the `postgres` user, who cannot enter pytest's folders
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def own_postgres(postgres_url: str) -> Any:
    """A cluster of this test's own, since the test stops it (the shared one must stay up).
    Outside pytest's folders, which the `postgres` user may not enter."""
    directory = Path(tempfile.mkdtemp(prefix="homeport-pg-restart."))
    exported = _cluster("start", directory)
    url = exported.strip().split("=", 1)[1]
    asyncio.run(migrate.upgrade(Settings(db_url=url)))
    yield directory, url
    _cluster("stop", directory)


async def _load(
    url: str, key: str, players: list[str], servers: list[str], stop: asyncio.Event
) -> dict[str, Any]:
    load = Load(key, players, servers)
    failures: list[str] = []

    async def writer(n: int, client: httpx.AsyncClient) -> None:
        step = 0
        while not stop.is_set():
            step += 1
            try:
                r = await load.write(client, n, step)
            except httpx.TransportError as exc:
                failures.append(f"transport: {exc!r}")
                await asyncio.sleep(0.1)
                continue
            if r.status_code >= 500 and r.status_code != 503:
                failures.append(
                    f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}"
                )
            if r.status_code == 503:
                assert r.headers["content-type"] == "application/problem+json"
                await asyncio.sleep(0.05)

    await load.run(url, 10, writer)
    return {
        "docs": load.docs,
        "grants": load.grants,
        "statuses": load.statuses,
        "worlds": load.worlds,
        "errors": failures,
    }


async def _ready(client: httpx.AsyncClient) -> int:
    try:
        return (await client.get("/readyz", timeout=3)).status_code
    except httpx.TransportError:
        return 0


def _unhandled(log: Path) -> str:
    """The server's own account of its 500s: the tracebacks after "unhandled error"."""
    text = log.read_text(errors="replace")
    start = text.find("unhandled error")
    return text[start : start + 6000] if start >= 0 else text[-3000:]


def test_homeport_rides_out_a_postgres_restart(own_postgres: Any, tmp_path: Path) -> None:
    directory, db_url = own_postgres
    env, key, players, servers = _setup(db_url, tmp_path)
    log = tmp_path / "serve.log"
    server = KillableServer(env, log=log).start()
    try:

        async def run() -> tuple[dict[str, Any], list[int]]:
            stop = asyncio.Event()
            load = asyncio.create_task(_load(server.url, key, players, servers, stop))
            readiness: list[int] = []
            async with httpx.AsyncClient(base_url=server.url) as probe:
                await asyncio.sleep(1.5)
                readiness.append(await _ready(probe))
                await asyncio.to_thread(_cluster, "pause", directory)
                down_until = time.monotonic() + 3
                while time.monotonic() < down_until:
                    readiness.append(await _ready(probe))
                    await asyncio.sleep(0.3)
                await asyncio.to_thread(_cluster, "resume", directory)
                back_by = time.monotonic() + 20
                while (status := await _ready(probe)) != 200:
                    readiness.append(status)
                    assert time.monotonic() < back_by, "not ready 20 s after PostgreSQL came back"
                    await asyncio.sleep(0.2)
                readiness.append(status)
                await asyncio.sleep(2.0)  # writes flow again
            stop.set()
            return await load, readiness

        seen, readiness = asyncio.run(run())
    finally:
        server.stop()
    assert readiness[0] == 200
    assert 503 in readiness, f"readiness never went red: {readiness}"
    assert readiness[-1] == 200
    assert seen["errors"] == [], (seen["errors"][:5], _unhandled(log))
    assert seen["statuses"][503] > 0, "the outage was seen by the load"
    assert seen["statuses"][200] > 0
    assert seen["worlds"], "no world snapshot was acknowledged"
    _check_after_restart(env, key, players, servers, seen)
