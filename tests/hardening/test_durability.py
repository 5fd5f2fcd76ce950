"""kill -9 under load: every write that was answered 2xx is still there after a restart (player
documents, heartbeats, and world snapshots with their chunks' bytes), and retrying an
inventory grant whose answer was lost never applies it twice."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.live import LiveServer, cli, environment
from tests.hardening.load_writers import WRITERS, Load

PLAYERS = 12


class KillableServer(LiveServer):
    """A live server in a session of its own, so its worker processes die with it."""

    def __init__(self, env: dict[str, str], log: Path | None = None) -> None:
        # Always to a file: a pipe nobody reads would block a server logging an outage.
        if log is None:
            folder = Path(env["HOMEPORT_DATA_DIR"]).parent
            log = Path(tempfile.mkstemp(prefix="serve-", suffix=".log", dir=folder)[1])
        super().__init__(env, serve_args=("--workers", "2"), log=log, new_session=True)

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> float:
        """SIGTERM, as an orchestrator stops a replica; seconds until the server exited."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        return time.monotonic() - started


async def _load(url: str, key: str, players: list[str], servers: list[str]) -> dict[str, Any]:
    """Write until the server dies; what was acknowledged, and every grant that was sent."""
    load = Load(key, players, servers)
    server_errors: list[str] = []

    async def writer(n: int, client: httpx.AsyncClient) -> None:
        for step in range(10_000):
            try:
                r = await load.write(client, n, step)
            except httpx.TransportError:
                return
            if r.status_code >= 500:
                server_errors.append(f"{r.request.method} {r.request.url.path}: {r.text[:200]}")

    await load.run(url, 5, writer)
    return {
        "docs": load.docs,
        "grants": load.grants,
        "beats": load.beats,
        "worlds": load.worlds,
        "errors": server_errors,
    }


def _setup(db_url: str, tmp_path: Path) -> tuple[dict[str, str], str, list[str], list[str]]:
    """A server's environment, a key, players with a saved document each, live servers."""
    env = environment(tmp_path / "data", db_url, HOMEPORT_AUTH_ADDRESS_MAX_ATTEMPTS="1000000")
    server = KillableServer(env).start()
    scopes = "players:read,players:write,registry,worlds"
    key = cli(env, "keys", "create", "--name", "load", "--scopes", scopes).stdout.split()[-1]
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, timeout=10, headers=auth) as http:
        players = [
            http.post("/v1/auth/device", json={"device_id": f"durable-device-{i:04d}"}).json()[
                "player"
            ]["id"]
            for i in range(PLAYERS)
        ]
        for n in range(WRITERS):
            if n % 4 == 0:  # the document writers of `Load`
                path = f"/v1/players/{players[n % PLAYERS]}/data/profile/w{n}"
                assert http.put(path, json={"value": {"xp": 0}, "version": 0}).status_code == 200
        servers = [
            http.post(
                "/v1/servers", json={"name": f"s{i}", "port": 9000 + i, "max_players": 8}
            ).json()["server_id"]
            for i in range(4)
        ]
    server.stop()
    return env, key, players, servers


def _check_after_restart(
    env: dict[str, str], key: str, players: list[str], servers: list[str], seen: dict[str, Any]
) -> None:
    server = KillableServer(env).start()
    auth = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=server.url, timeout=10, headers=auth) as http:
            for name, (version, xp) in seen["docs"].items():
                player, key_name = name.split("/")
                doc = http.get(f"/v1/players/{player}/data/profile/{key_name}").json()
                # Acknowledged means committed; a later save may have committed unanswered.
                assert doc["version"] >= version, name
                if doc["version"] == version:
                    assert doc["value"] == {"xp": xp}, name
            for world, (seq, sha) in seen["worlds"].items():
                latest = http.get(f"/v1/worlds/{world}").json()["latest"]
                assert latest["seq"] >= seq, world  # a later commit may have gone unanswered
                snapshot = http.get(f"/v1/worlds/{world}/snapshots/{seq}").json()
                assert snapshot["manifest"] == {"terrain": sha}, world
                chunk = http.get(f"/v1/worlds/{world}/chunks/{sha}")
                assert chunk.status_code == 200, (world, chunk.text)
                assert hashlib.sha256(chunk.content).hexdigest() == sha, world
            listed = {s["id"] for s in http.get("/v1/servers?limit=100").json()["servers"]}
            assert set(servers) <= listed
            # Every grant sent, retried now: each applies at most once in all.
            for player, idem in seen["grants"]:
                retry = http.post(
                    f"/v1/players/{player}/inventory/grant",
                    json={"items": [{"item": "gold", "quantity": 1}]},
                    headers={"Idempotency-Key": idem},
                )
                assert retry.status_code == 200, retry.text
            for player in players:
                held = http.get(f"/v1/players/{player}/inventory").json()["items"]
                gold = sum(i["quantity"] for i in held if i["item"] == "gold")
                sent = sum(1 for p, _ in seen["grants"] if p == player)
                assert gold == sent, (player, gold, sent)
                ledger = http.get(f"/v1/players/{player}/inventory/ledger?limit=200").json()
                operations = [e["operation_id"] for e in ledger["entries"]]
                assert len(operations) == len(set(operations)) == min(sent, 200)
    finally:
        server.stop()


def test_kill_9_loses_no_acknowledged_write(db_url: str, tmp_path: Path) -> None:
    env, key, players, servers = _setup(db_url, tmp_path)
    server = KillableServer(env).start()

    async def run() -> dict[str, Any]:
        load = asyncio.create_task(_load(server.url, key, players, servers))
        await asyncio.sleep(2.0)
        server.kill()  # mid-write, no shutdown of any kind
        return await load

    seen = asyncio.run(run())
    assert seen["docs"], "no save was acknowledged before the kill"
    assert seen["worlds"], "no world snapshot was acknowledged before the kill"
    assert seen["errors"] == []
    assert seen["beats"] > 0
    _check_after_restart(env, key, players, servers, seen)


def test_sigterm_under_load_exits_cleanly_and_keeps_every_write(
    db_url: str, tmp_path: Path
) -> None:
    env, key, players, servers = _setup(db_url, tmp_path)
    server = KillableServer(env).start()

    async def run() -> tuple[dict[str, Any], float]:
        load = asyncio.create_task(_load(server.url, key, players, servers))
        await asyncio.sleep(1.5)
        took = await asyncio.to_thread(server.terminate)
        return await load, took

    seen, took = asyncio.run(run())
    assert server.process is not None
    assert server.process.returncode == 0
    assert took < 30, f"shutdown took {took:.1f} s"
    assert seen["errors"] == [], "requests in flight at SIGTERM must finish, not fail"
    assert seen["docs"]
    assert seen["worlds"]
    _check_after_restart(env, key, players, servers, seen)
