"""`homeport serve` runs the fleet: SIGTERM drains its servers with every player saved, and
after a kill -9 the next start finds the orphaned servers and stops them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from homeport.fleet.spec import FleetSpec
from homeport.sim import player as sim_player
from tests.e2e.live import HOMEPORT, cli, environment, free_port
from tests.fleet.conftest import BEAT, sim_fleet


class Serve:
    """`homeport serve` in a session of its own, as systemd or Docker would run it."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env = env
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = Path(env["HOMEPORT_DATA_DIR"]) / f"serve-{time.monotonic_ns()}.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [*HOMEPORT, "serve", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not self._healthy():
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "homeport serve did not start"
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def servers(self, admin: str, *, ended: bool = False) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{self.url}/v1/fleets/demo/servers",
            params={"include_ended": ended},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["servers"]
        return found

    def ready(self, admin: str, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 60
        while True:
            found = [s for s in self.servers(admin) if s["state"] == "ready"]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"not {count} ready: {self.log.read_text()}"
            time.sleep(0.2)


def _env(tmp_path: Path, db_url: str, port: int, fleet: FleetSpec | None = None) -> dict[str, str]:
    fleet = fleet or sim_fleet(scaling={"buffer": 2, "max_servers": 3})
    return environment(
        tmp_path / "data",
        db_url,
        HOMEPORT_FLEETS=json.dumps({"demo": fleet.model_dump(mode="json")}),
        HOMEPORT_REGISTRY_HEARTBEAT_INTERVAL=str(BEAT),
        HOMEPORT_FLEET_RECONCILE_INTERVAL="0.2",
        HOMEPORT_PORT=str(port),
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


async def _play(url: str, port: int, index: int) -> tuple[str, sim_player.SimPlayer]:
    async with httpx.AsyncClient(base_url=url) as client:
        device = {"device_id": f"serve-drain-{os.getpid()}-{index}-{time.monotonic_ns()}"}
        body = (await client.post("/v1/auth/device", json=device)).json()
    connection = await sim_player.connect("127.0.0.1", port, body["access_token"])
    await connection.gain_xp(100 * (index + 1))
    return body["player"]["id"], connection


def test_sigterm_drains_the_fleet_and_saves_every_player(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = _env(tmp_path, db_url, port)
    (tmp_path / "data").mkdir()
    admin = cli(env, "keys", "create", "--name", "admin", "--admin").stdout.split()[-1]
    serve = Serve(env, port)
    servers = serve.ready(admin, 2)

    pids = [s["pid"] for s in servers]

    async def play_then_stop() -> list[str]:
        players = [await _play(serve.url, servers[i % 2]["port"], i) for i in range(4)]
        started = time.monotonic()
        serve.process.send_signal(signal.SIGTERM)
        for _, connection in players:
            assert await asyncio.wait_for(connection.wait_closed_by_server(), 30) == "BYE draining"
            await connection.close()
        assert await asyncio.to_thread(serve.process.wait, 40) == 0, serve.log.read_text()
        assert time.monotonic() - started < 30, "within the grace period"
        return [player_id for player_id, _ in players]

    player_ids = asyncio.run(play_then_stop())
    assert not any(_alive(pid) for pid in pids)

    serve = Serve(env, port)  # read back what was saved, through a fresh start
    try:
        key = cli(env, "keys", "create", "--name", "reader", "--scopes", "players:read")
        reader = {"Authorization": f"Bearer {key.stdout.split()[-1]}"}
        for index, player_id in enumerate(player_ids):
            saved = httpx.get(
                f"{serve.url}/v1/players/{player_id}/data/profile/progress", headers=reader
            )
            assert saved.status_code == 200, saved.text
            assert saved.json()["value"]["xp"] == 100 * (index + 1)
        ended = [
            s for s in serve.servers(admin, ended=True) if s["id"] in {x["id"] for x in servers}
        ]
        assert {s["state"] for s in ended} == {"stopped"}
        assert {s["exit_code"] for s in ended} == {0}
    finally:
        serve.process.send_signal(signal.SIGTERM)
        serve.process.wait(40)


def test_orphans_of_a_killed_homeport_are_reaped_on_start(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    # The default command: the reference server of this installation.
    fleet = FleetSpec(port_range=(26000, 26999), scaling={"buffer": 2, "max_servers": 3})
    env = _env(tmp_path, db_url, port, fleet)
    (tmp_path / "data").mkdir()
    admin = cli(env, "keys", "create", "--name", "admin", "--admin").stdout.split()[-1]
    serve = Serve(env, port)
    servers = serve.ready(admin, 2)
    os.killpg(serve.process.pid, signal.SIGKILL)  # Homeport dies; its game servers do not
    serve.process.wait()
    orphans = [s["pid"] for s in servers]
    assert all(_alive(pid) for pid in orphans), "game servers live in process groups of their own"

    serve = Serve(env, port)
    try:
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in orphans):
            assert time.monotonic() < deadline, "orphans still running"
            time.sleep(0.1)
        fresh = serve.ready(admin, 2)
        assert {s["id"] for s in fresh}.isdisjoint(s["id"] for s in servers)
        old = {s["id"]: s for s in serve.servers(admin, ended=True)}
        for server in servers:
            assert old[server["id"]]["state"] == "stopped"
            assert old[server["id"]]["reason"].startswith("orphaned")
    finally:
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(40) == 0
