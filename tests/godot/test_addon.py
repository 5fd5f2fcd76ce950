"""The GDScript addon in a real Godot 4 against a live Homeport: the client half (accounts,
sessions kept encrypted, the server browser), the server half (registration, validation, saves
that survive an outage) and the graceful shutdown through the stop file Homeport's wrapper
creates on SIGTERM. The scripts are checked with the typed-GDScript warnings as errors."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from homeport.db.engine import create_engine
from homeport.registry.models import Server
from homeport.settings import Settings
from tests.conftest import database_for
from tests.e2e.live import LiveServer, cli, environment, free_port
from tests.godot.engine import Godot

pytestmark = pytest.mark.e2e

SCRIPTS = [
    "addons/homeport/homeport_result.gd",
    "addons/homeport/homeport_http.gd",
    "addons/homeport/homeport_client.gd",
    "addons/homeport/homeport_server.gd",
    "addons/homeport/homeport_world.gd",
    "addons/homeport/homeport.gd",
    "addons/homeport/plugin.gd",
    "tests/runner.gd",
    "tests/server_main.gd",
]


@pytest.fixture(scope="module")
def godot() -> Godot:
    return Godot()


@pytest.fixture(scope="module")
def project(godot: Godot) -> tuple[Path, str]:
    return godot.project()


@pytest.fixture(scope="module", params=["sqlite"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, str, str]]:
    directory = tmp_path_factory.mktemp("homeport-godot")
    env = environment(
        directory,
        database_for(request, directory),
        HOMEPORT_FLEET_ENABLED="false",
        HOMEPORT_REGISTRY_HEARTBEAT_INTERVAL="1",  # the addon heartbeats at the interval told
        HOMEPORT_FLEETS='{"arena": {}}',
        HOMEPORT_MATCHMAKING_QUEUES='{"duel": {"fleet": "arena", "teams": 2, "team_size": 1}}',
    )
    scopes = "validate,registry,players:read,players:write,worlds"
    key = cli(env, "keys", "create", "--name", "godot", "--scopes", scopes).stdout.split()[-1]
    live = LiveServer(env).start()
    try:
        yield live, key, env["HOMEPORT_DB_URL"]
    finally:
        assert live.stop() == 0


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_every_script_passes_the_typed_checks(godot: Godot, project: tuple[Path, str]) -> None:
    _, inside = project
    for script in SCRIPTS:
        checked = godot.run(
            "--headless", "--path", inside, "--check-only", "--script", f"res://{script}"
        )
        output = checked.stdout + checked.stderr
        assert checked.returncode == 0, f"{script}:\n{output[-2000:]}"
        assert "SCRIPT ERROR" not in output, f"{script}:\n{output[-2000:]}"


def test_the_addon_against_a_live_homeport(
    godot: Godot,
    project: tuple[Path, str],
    backend: tuple[LiveServer, str, str],
    silent_port: int,
) -> None:
    live, key, _ = backend
    _, inside = project
    ran = godot.run(
        "--headless",
        "--path",
        inside,
        "-s",
        "res://tests/runner.gd",
        "--",
        f"--url={live.url}",
        f"--key={key}",
        f"--silent-port={silent_port}",
        f"--closed-port={free_port()}",
        timeout=180,
    )
    lines = [line for line in ran.stdout.splitlines() if line.startswith(("PASS", "FAIL", "  "))]
    assert ran.returncode == 0, "\n".join(lines) + "\n" + ran.stdout[-3000:] + ran.stderr[-2000:]
    assert "11 passed, 0 failed" in ran.stdout, ran.stdout[-3000:]


def _server_env(
    live: LiveServer, key: str, stop_file: str, player_id: str, name: str
) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")},
        "HOMEPORT_URL": live.url,
        "HOMEPORT_SERVER_KEY": key,
        "HOMEPORT_PORT": "7799",
        "HOMEPORT_STOP_FILE": stop_file,
        "HOMEPORT_TEST_PLAYER_ID": player_id,
        "HOMEPORT_TEST_SERVER_NAME": name,
    }


def _new_player(url: str) -> str:
    made = httpx.post(f"{url}/v1/auth/device", json={"device_id": f"g-{uuid.uuid4().hex}"})
    player_id: str = made.json()["player"]["id"]
    return player_id


def _saved_on_stop(url: str, key: str, player_id: str) -> bool:
    saved = httpx.get(
        f"{url}/v1/players/{player_id}/data/profile/progress",
        headers={"Authorization": f"Bearer {key}"},
    )
    return saved.status_code == 200 and saved.json()["value"] == {"saved_on": "stop"}


@pytest.mark.parametrize("trigger", ["stop-file", "drain"])
def test_the_server_shuts_down_gracefully(
    godot: Godot,
    project: tuple[Path, str],
    backend: tuple[LiveServer, str, str],
    tmp_path: Path,
    trigger: str,
) -> None:
    """What Homeport's wrapper does on SIGTERM (create HOMEPORT_STOP_FILE), or what the fleet
    does to drain a server (an action in the heartbeat answer, here after an allocation): the
    server saves (its `before_shutdown` step), deregisters and exits 0."""
    live, key, db_url = backend
    host, inside = project
    player_id = _new_player(live.url)
    name = f"godot-{uuid.uuid4().hex[:8]}"
    stop_inside = f"{inside}/stop-{uuid.uuid4().hex[:8]}"
    env = _server_env(live, key, stop_inside, player_id, name)
    log = tmp_path / "server.log"
    main = "res://tests/server_main.gd"
    server = godot.start("--headless", "--path", inside, "-s", main, env=env, log=log)
    try:
        listed = _wait(lambda: _listed(live.url, name), 60, log)
        assert listed["port"] == 7799
        if trigger == "stop-file":
            (host / stop_inside.removeprefix(inside + "/")).touch()
        else:
            allocation = {"allocation_id": "a-1", "match_id": "m-42", "players": [player_id]}
            _direct(db_url, str(listed["id"]), {"allocation": allocation})
            _wait(lambda: "ALLOCATED m-42" in log.read_text(), 15, log)
            _direct(db_url, str(listed["id"]), {"action": "drain", "allocation": allocation})
        started = time.monotonic()
        assert server.wait(30) == 0, log.read_text()[-3000:]
        assert time.monotonic() - started < 10
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert f"STOPPING {trigger}" in log.read_text()
    assert _listed(live.url, name) is None
    assert _saved_on_stop(live.url, key, player_id)


def _direct(db_url: str, server_id: str, directive: dict[str, object]) -> None:
    """What the fleet writes for a server's next heartbeat answer."""

    async def write() -> None:
        engine = create_engine(Settings(db_url=db_url))
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    update(Server)
                    .where(Server.id == uuid.UUID(server_id))
                    .values(directive=directive)
                )
        finally:
            await engine.dispose()

    asyncio.run(write())


def _listed(url: str, name: str) -> dict[str, object] | None:
    page = httpx.get(f"{url}/v1/servers", params={"q": name}).json()
    return next((s for s in page["servers"] if s["name"] == name), None)


def _wait(check: object, timeout: float, log: Path) -> dict[str, object]:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"timed out; the server's log:\n{log.read_text()[-3000:]}")
