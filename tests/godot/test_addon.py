"""The GDScript addon in a real Godot 4 against a live Homeport: the client half (accounts,
sessions kept encrypted, the server browser), the server half (registration, validation, saves
that survive an outage) and the graceful shutdown through the stop file Homeport's wrapper
creates on SIGTERM. The scripts are checked with the typed-GDScript warnings as errors."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import database_for
from tests.e2e.live import LiveServer, cli, environment, free_port
from tests.godot.engine import Godot

pytestmark = pytest.mark.e2e

SCRIPTS = [
    "addons/homeport/homeport_result.gd",
    "addons/homeport/homeport_http.gd",
    "addons/homeport/homeport_client.gd",
    "addons/homeport/homeport_server.gd",
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
) -> Iterator[tuple[LiveServer, str]]:
    directory = tmp_path_factory.mktemp("homeport-godot")
    env = environment(directory, database_for(request, directory), HOMEPORT_FLEET_ENABLED="false")
    scopes = "validate,registry,players:read,players:write,worlds"
    key = cli(env, "keys", "create", "--name", "godot", "--scopes", scopes).stdout.split()[-1]
    live = LiveServer(env).start()
    try:
        yield live, key
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
    backend: tuple[LiveServer, str],
    silent_port: int,
) -> None:
    live, key = backend
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
    assert "6 passed, 0 failed" in ran.stdout, ran.stdout[-3000:]


def test_the_stop_file_shuts_the_server_down_gracefully(
    godot: Godot, project: tuple[Path, str], backend: tuple[LiveServer, str], tmp_path: Path
) -> None:
    """What Homeport's wrapper does on SIGTERM: create HOMEPORT_STOP_FILE. The server saves
    (its `before_shutdown` step), deregisters and exits 0."""
    live, key = backend
    host, inside = project
    player = httpx.post(f"{live.url}/v1/auth/device", json={"device_id": f"g-{uuid.uuid4().hex}"})
    player_id = player.json()["player"]["id"]
    name = f"godot-{uuid.uuid4().hex[:8]}"
    stop_inside = f"{inside}/stop-{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")},
        "HOMEPORT_URL": live.url,
        "HOMEPORT_SERVER_KEY": key,
        "HOMEPORT_PORT": "7799",
        "HOMEPORT_STOP_FILE": stop_inside,
        "HOMEPORT_TEST_PLAYER_ID": player_id,
        "HOMEPORT_TEST_SERVER_NAME": name,
    }
    log = tmp_path / "server.log"
    server = godot.start(
        "--headless", "--path", inside, "-s", "res://tests/server_main.gd", env=env, log=log
    )
    try:
        listed = _wait(lambda: _listed(live.url, name), 60, log)
        assert listed["port"] == 7799
        (host / stop_inside.removeprefix(inside + "/")).touch()
        started = time.monotonic()
        assert server.wait(30) == 0, log.read_text()[-3000:]
        assert time.monotonic() - started < 10
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert _listed(live.url, name) is None
    saved = httpx.get(
        f"{live.url}/v1/players/{player_id}/data/profile/progress",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["value"] == {"saved_on": "stop"}


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
