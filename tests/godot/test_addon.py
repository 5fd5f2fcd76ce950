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
from tests.agones.sidecar import FakeSidecar
from tests.e2e.live import LiveServer, free_port
from tests.godot.engine import ADDON, PROJECT, Godot

pytestmark = pytest.mark.e2e

SCRIPTS = [
    *(f"addons/homeport/{p.name}" for p in sorted(ADDON.glob("*.gd"))),
    *(f"tests/{p.name}" for p in sorted((PROJECT / "tests").glob("*.gd"))),
]


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


@pytest.mark.parametrize("trigger", ["stop-file", "drain", "agones"])
def test_the_server_shuts_down_gracefully(
    godot: Godot,
    project: tuple[Path, str],
    backend: tuple[LiveServer, str, str],
    tmp_path: Path,
    trigger: str,
) -> None:
    """What Homeport's wrapper does on SIGTERM (create HOMEPORT_STOP_FILE), or what the fleet
    does to drain a server (an action in the heartbeat answer, here after an allocation), or
    Agones ending an allocated GameServer (through the SDK sidecar's watch): the server saves
    (its `before_shutdown` step), deregisters and exits 0."""
    live, key, db_url = backend
    host, inside = project
    player_id = _new_player(live.url)
    name = f"godot-{uuid.uuid4().hex[:8]}"
    stop_inside = f"{inside}/stop-{uuid.uuid4().hex[:8]}"
    env = _server_env(live, key, stop_inside, player_id, name)
    sidecar = FakeSidecar(game_port=27999).start()  # the GameServer's host port
    if trigger == "agones":
        env["AGONES_SDK_HTTP_PORT"] = str(sidecar.port)
    log = tmp_path / "server.log"
    main = "res://tests/server_main.gd"
    server = godot.start("--headless", "--path", inside, "-s", main, env=env, log=log)
    try:
        listed = _wait(lambda: _listed(live.url, name), 60, log)
        # Under Agones the entry names the GameServer's host port, where players reach it.
        assert listed["port"] == (27999 if trigger == "agones" else 7799)
        if trigger == "stop-file":
            (host / stop_inside.removeprefix(inside + "/")).touch()
        elif trigger == "agones":
            _under_agones(sidecar, live.url, name, log)
        else:
            allocation = {"allocation_id": "a-1", "match_id": "m-42", "players": [player_id]}
            _direct(db_url, str(listed["id"]), {"allocation": allocation})
            _wait(lambda: "ALLOCATED m-42" in log.read_text(), 15, log)
            _direct(db_url, str(listed["id"]), {"action": "drain", "allocation": allocation})
        started = time.monotonic()
        assert server.wait(30) == 0, log.read_text()[-3000:]
        assert time.monotonic() - started < 10
    finally:
        sidecar.stop()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert f"STOPPING {trigger}" in log.read_text()
    assert sidecar.count("POST", "/shutdown") == (1 if trigger == "agones" else 0)
    assert _listed(live.url, name) is None
    assert _saved_on_stop(live.url, key, player_id)


def _under_agones(sidecar: FakeSidecar, url: str, name: str, log: Path) -> None:
    """Ready once registered, health pings, the watch; an allocation reaches the game and the
    registry; then Agones shuts the GameServer down."""
    sidecar.wait_for("POST", "/ready")
    sidecar.wait_for("GET", "/watch/gameserver")
    sidecar.wait_for("POST", "/health", times=2)
    assert sidecar.snapshot()[1]["status"]["state"] == "Ready"
    notes = {"homeport.dev/match-id": "m-77", "homeport.dev/allocation-id": "a-77"}
    sidecar.change("Allocated", notes)
    _wait(lambda: "ALLOCATED m-77" in log.read_text(), 15, log)
    _wait(lambda: (_listed(url, name) or {}).get("state") == "in_match", 15, log)
    sidecar.change("Shutdown")


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
