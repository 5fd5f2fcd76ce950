"""The example project as a Godot developer runs it: a headless dedicated server and a client
through a local Homeport. The client signs in, connects over ENet, is validated and spawned,
moves with prediction and reconciliation (its predicted position must equal the server's), and
its moves are saved; a second session resumes them; a forged token is turned away; SIGTERM to
the wrapper ends the server cleanly: the player still connected is saved, the server
deregistered."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from homeport.fleet.wrapper import wrapper_path
from tests.conftest import database_for
from tests.e2e.live import LiveServer, cli, environment, free_port
from tests.godot.engine import DEMO, Godot
from tests.godot.test_addon import _listed, _wait

pytestmark = pytest.mark.e2e
WRAPPER = wrapper_path()


@pytest.fixture(scope="module")
def godot() -> Godot:
    return Godot()


@pytest.fixture(scope="module", params=["sqlite"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, str]]:
    directory = tmp_path_factory.mktemp("homeport-demo")
    env = environment(directory, database_for(request, directory), HOMEPORT_FLEET_ENABLED="false")
    scopes = "validate,registry,players:read,players:write"
    key = cli(env, "keys", "create", "--name", "demo", "--scopes", scopes).stdout.split()[-1]
    live = LiveServer(env).start()
    try:
        yield live, key
    finally:
        assert live.stop() == 0


def _moves_so_far(output: str) -> int:
    found = re.search(r"\((\d+) moves so far\)", output)
    assert found is not None, output[-2000:]
    return int(found.group(1))


def _client(
    godot: Godot, inside: str, url: str, port: int, device: str, *extra: str, status: int = 0
) -> str:
    ran = godot.run(
        "--path",
        inside,
        "--display-driver",
        "headless",
        "--audio-driver",
        "Dummy",
        "--",
        "--client",
        f"--url={url}",
        f"--server-port={port}",
        "--moves=120",
        f"--device={device}",
        *extra,
        env={k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")},
        timeout=90,
    )
    assert ran.returncode == status, ran.stdout[-3000:] + ran.stderr[-2000:]
    return ran.stdout


def test_a_client_plays_on_the_demo_server_through_homeport(
    godot: Godot, backend: tuple[LiveServer, str], tmp_path: Path
) -> None:
    live, key = backend
    host, inside = godot.project(DEMO)
    port = free_port()
    name = f"demo-{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")},
        "HOMEPORT_URL": live.url,
        "HOMEPORT_SERVER_KEY": key,
        "HOMEPORT_PORT": str(port),
    }
    log = tmp_path / "server.log"
    shutil.copy(WRAPPER, host / "wrapper.sh")
    # As in the container and the local fleet: the SIGTERM wrapper runs the headless server.
    command = [f"{inside}/wrapper.sh", "/usr/bin/godot", "--headless", "--path", inside]
    server = godot.exec("/bin/sh", *command, "--", "--server", f"--name={name}", env=env, log=log)
    device = f"demo-device-{uuid.uuid4().hex}"
    playing: subprocess.Popen[bytes] | None = None
    try:
        _wait(lambda: _listed(live.url, name), 60, log)
        first = _client(godot, inside, live.url, port, device)
        assert "(0 moves so far)" in first
        assert "DEMO CLIENT OK moves=120" in first
        _wait(lambda: "saved " in log.read_text(), 15, log)
        second = _client(godot, inside, live.url, port, device)
        # The first session's moves were saved. Inputs travel unreliably (as movement does), so
        # on a loaded machine the server may not apply every one; it saves what it applied.
        first_saved = _moves_so_far(second)
        assert 100 <= first_saved <= 120
        forged = _client(godot, inside, live.url, port, device, "--token=forged", status=3)
        assert "CLIENT REJECTED" in forged
        assert "token-invalid" in log.read_text()
        # A player still connected (and moving) when SIGTERM comes must be saved too.
        staying = f"demo-device-{uuid.uuid4().hex}"
        client_log = tmp_path / "staying.log"
        playing = godot.start(
            *("--path", inside, "--display-driver", "headless", "--audio-driver", "Dummy"),
            *("--", "--client", f"--url={live.url}", f"--server-port={port}"),
            f"--device={staying}",
            env={k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")},
            log=client_log,
        )
        _wait(lambda: "CLIENT welcome" in client_log.read_text(), 30, client_log)
        time.sleep(1)  # some moves
        server.send_signal(signal.SIGTERM)  # to the wrapper, as `docker stop` or the fleet does
        assert server.wait(30) == 0, log.read_text()[-3000:]
        assert playing.wait(30) == 2, client_log.read_text()[-2000:]  # told the server left
    finally:
        for process in (server, playing):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    assert _listed(live.url, name) is None
    player = httpx.post(f"{live.url}/v1/auth/device", json={"device_id": device}).json()
    saved = httpx.get(
        f"{live.url}/v1/players/{player['player']['id']}/data/profile/demo",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert first_saved + 100 <= saved.json()["value"]["moves"] <= first_saved + 120, saved.text
    stayed = httpx.post(f"{live.url}/v1/auth/device", json={"device_id": staying}).json()
    kept = httpx.get(
        f"{live.url}/v1/players/{stayed['player']['id']}/data/profile/demo",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert kept.status_code == 200, kept.text
    assert kept.json()["value"]["moves"] > 0
    assert "SCRIPT ERROR" not in log.read_text()


def test_the_example_scripts_pass_the_typed_checks(godot: Godot) -> None:
    _, inside = godot.project(DEMO)
    for script in sorted(p.relative_to(DEMO) for p in DEMO.glob("*.gd")):
        checked = godot.run(
            "--headless", "--path", inside, "--check-only", "--script", f"res://{script}"
        )
        output = checked.stdout + checked.stderr
        assert checked.returncode == 0, f"{script}:\n{output[-2000:]}"
        assert "SCRIPT ERROR" not in output, f"{script}:\n{output[-2000:]}"
