"""The Godot tests' shared parts: the engine, a fresh copy of the test project, and a live
Homeport the addon talks to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import database_for
from tests.e2e.live import LiveServer, cli, environment
from tests.godot.engine import Godot


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
