"""PostgreSQL restarted under load: Homeport answers 503 while it is gone, reports not ready,
and comes back by itself when it returns; every acknowledged write is kept."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from homeport.db import migrate
from homeport.settings import Settings
from tests.hardening.test_durability import (
    WRITERS,
    KillableServer,
    _check_after_restart,
    _setup,
)

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
    acked_docs: dict[str, tuple[int, int]] = {}
    grants: list[tuple[str, str]] = []
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    auth = {"Authorization": f"Bearer {key}"}

    async def writer(n: int, client: httpx.AsyncClient) -> None:
        player = players[n % len(players)]
        version = 1
        step = 0
        while not stop.is_set():
            step += 1
            try:
                if n % 3 == 0:
                    xp = n * 100_000 + step
                    r = await client.put(
                        f"/v1/players/{player}/data/profile/w{n}",
                        json={"value": {"xp": xp}, "version": version},
                        headers=auth,
                    )
                    if r.status_code == 200:
                        version = r.json()["version"]
                        acked_docs[f"{player}/w{n}"] = (version, xp)
                    elif r.status_code == 409:  # a save committed unanswered: catch up
                        version = r.json().get("current_version", version)
                elif n % 3 == 1:
                    idem = f"grant-{n}-{step}"
                    grants.append((player, idem))
                    r = await client.post(
                        f"/v1/players/{player}/inventory/grant",
                        json={"items": [{"item": "gold", "quantity": 1}]},
                        headers={**auth, "Idempotency-Key": idem},
                    )
                else:
                    r = await client.put(
                        f"/v1/servers/{servers[n % len(servers)]}/heartbeat",
                        json={"players": step % 8},
                        headers=auth,
                    )
            except httpx.TransportError as exc:
                failures.append(f"transport: {exc!r}")
                await asyncio.sleep(0.1)
                continue
            statuses[r.status_code] += 1
            if r.status_code >= 500 and r.status_code != 503:
                failures.append(
                    f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}"
                )
            if r.status_code == 503:
                assert r.headers["content-type"] == "application/problem+json"
                await asyncio.sleep(0.05)

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await asyncio.gather(*(writer(n, client) for n in range(WRITERS)))
    return {"docs": acked_docs, "grants": grants, "statuses": statuses, "errors": failures}


async def _ready(client: httpx.AsyncClient) -> int:
    try:
        return (await client.get("/readyz", timeout=3)).status_code
    except httpx.TransportError:
        return 0


def test_homeport_rides_out_a_postgres_restart(own_postgres: Any, tmp_path: Path) -> None:
    directory, db_url = own_postgres
    env, key, players, servers = _setup(db_url, tmp_path)
    server = KillableServer(env).start()
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
    assert seen["errors"] == [], seen["errors"][:5]
    assert seen["statuses"][503] > 0, "the outage was seen by the load"
    assert seen["statuses"][200] > 0
    _check_after_restart(env, key, players, servers, seen)
