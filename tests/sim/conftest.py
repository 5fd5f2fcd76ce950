"""A live `homeport serve` per database, shared by a module's tests, and the sim servers they
start against it as real subprocesses, as the fleet would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from homeport.fleet.wrapper import wrapper_path
from tests.conftest import database_for
from tests.e2e.live import LiveServer, cli, environment, free_port

SIM = [sys.executable, "-m", "homeport.sim.server"]
WRAPPER = ["/bin/sh", str(wrapper_path())]
SCOPES = "validate,registry,players:read,players:write,worlds"


def wait_for(check: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
    """Poll until `check` returns something true, and return it."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return result


class Backend:
    """The live Homeport, a server key with the scopes a game server needs, and a client."""

    def __init__(self, live: LiveServer, key: str) -> None:
        self.live = live
        self.url = live.url
        self.key = key
        self.http = httpx.Client(base_url=live.url, timeout=10)
        self._devices = 0

    def new_player(self) -> tuple[str, str]:
        """A fresh anonymous player: (player id, access token)."""
        self._devices += 1
        device = f"sim-test-device-{os.getpid()}-{self._devices:06d}"
        answer = self.http.post("/v1/auth/device", json={"device_id": device})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        return body["player"]["id"], body["access_token"]

    def progress(self, player_id: str) -> tuple[dict[str, Any] | None, int]:
        """The stored progress document as the server key reads it, and its version."""
        answer = self.http.get(f"/v1/players/{player_id}/data/profile/progress", headers=self._auth)
        if answer.status_code == 404:
            return None, 0
        assert answer.status_code == 200, answer.text
        return answer.json()["value"], answer.json()["version"]

    def put_progress(self, player_id: str, value: dict[str, Any], version: int) -> int:
        """A write by someone else than the sim server (another server, an admin tool)."""
        answer = self.http.put(
            f"/v1/players/{player_id}/data/profile/progress",
            headers=self._auth,
            json={"value": value, "version": version},
        )
        assert answer.status_code == 200, answer.text
        return int(answer.json()["version"])

    def wait_progress(self, player_id: str, xp: int) -> tuple[dict[str, Any], int]:
        def saved() -> tuple[dict[str, Any], int] | None:
            value, version = self.progress(player_id)
            return (value, version) if value is not None and value["xp"] == xp else None

        found: tuple[dict[str, Any], int] = wait_for(saved, what=f"xp {xp} saved")
        return found

    def listed(self, name: str) -> dict[str, Any] | None:
        """The server of that name in the public server list, if it is there."""
        page = self.http.get("/v1/servers", params={"q": name, "limit": 100}).json()
        return next((s for s in page["servers"] if s["name"] == name), None)

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


class Sim:
    """One `python -m homeport.sim.server` process, its output captured to a file."""

    def __init__(
        self, backend: Backend, log: Path, args: list[str], env: dict[str, str], wrapped: bool
    ) -> None:
        self.backend = backend
        self.port = free_port()
        self.name = f"sim-{self.port}"
        self.log_path = log
        environ = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
        environ.update(HOMEPORT_URL=backend.url, HOMEPORT_SERVER_KEY=backend.key, **env)
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [*(WRAPPER if wrapped else []), *SIM, "--port", str(self.port), *args],
                env=environ,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: a kill reaches a wrapped one too
            )

    def wait_listed(self, **expected: Any) -> dict[str, Any]:
        """The server's entry once the list shows it with the expected fields."""

        def matching() -> dict[str, Any] | None:
            assert self.process.poll() is None, f"the sim server exited:\n{self.log()}"
            server = self.backend.listed(self.name)
            if server is None or any(server[k] != v for k, v in expected.items()):
                return None
            return server

        found: dict[str, Any] = wait_for(matching, what=f"{self.name} listed with {expected}")
        return found

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"the sim server did not exit:\n{self.log()}") from exc

    def log(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """One live Homeport per database for the whole module: starting one costs seconds."""
    directory = tmp_path_factory.mktemp(f"homeport-{request.param}")
    db_url = database_for(request, directory)
    env = environment(directory, db_url, HOMEPORT_REGISTRY_HEARTBEAT_INTERVAL="1")
    key = cli(env, "keys", "create", "--name", "sim", "--scopes", SCOPES).stdout.split()[-1]
    backend = Backend(LiveServer(env).start(), key)
    try:
        yield backend
    finally:
        backend.http.close()
        assert backend.live.stop() == 0


@pytest.fixture
def start_sim(backend: Backend, tmp_path: Path) -> Iterator[Callable[..., Sim]]:
    """Start sim servers (options, then HOMEPORT_* variables; `wrapped` runs one under the
    SIGTERM wrapper, as the fleet runs a Godot server); any left running are killed."""
    started: list[Sim] = []

    def start(*args: str, wrapped: bool = False, **env: str) -> Sim:
        sim = Sim(backend, tmp_path / f"sim-{len(started)}.log", list(args), env, wrapped)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.kill()
