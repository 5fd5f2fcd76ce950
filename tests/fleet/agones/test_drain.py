"""Draining a GameServer of an Agones fleet: Homeport never stops it itself, so the request
goes where the game server hears it, the heartbeat answer of its registry entry; the game
server then stops through its SDK and Agones replaces it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from homeport.fleet.agones.allocation import server_id
from homeport.fleet.spec import FleetSpec
from homeport.state import AppState
from tests.e2e.live import cli, environment
from tests.factories import bearer, problem_type, register_server, registry_key
from tests.fleet.agones.conftest import AGONES_FLEET
from tests.fleet.agones.fake_kube import FakeKube


async def test_a_registered_game_server_hears_the_drain_in_its_heartbeat(
    kube: FakeKube, client: httpx.AsyncClient, state: AppState, admin: str
) -> None:
    kube.add_game_server(AGONES_FLEET, name="drained", address="203.0.113.30", port=7601)
    key = await registry_key(state)
    entry = await register_server(client, key, address="203.0.113.30", port=7601, state="ready")

    answer = await client.post(
        f"/v1/fleets/arena/servers/{entry['server_id']}/drain", headers=bearer(admin)
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["state"] == "draining"
    beat = await client.put(
        f"/v1/servers/{entry['server_id']}/heartbeat", json={}, headers=bearer(key)
    )
    assert beat.json()["action"] == "drain", beat.json()
    assert kube.states()["drained"] == "Ready", "the cluster is left to the game server's SDK"


async def test_a_game_server_nobody_registered_cannot_be_drained(
    kube: FakeKube, client: httpx.AsyncClient, admin: str
) -> None:
    kube.add_game_server(AGONES_FLEET, name="silent", port=7602)
    silent = server_id("default", "silent")
    answer = await client.post(f"/v1/fleets/arena/servers/{silent}/drain", headers=bearer(admin))
    assert answer.status_code == 409, answer.text
    assert problem_type(answer) == "server-not-reachable"


async def test_homeport_fleet_drain_finds_the_game_server_in_its_cluster(
    kube: FakeKube,
    client: httpx.AsyncClient,
    state: AppState,
    admin: str,
    fleet_spec: FleetSpec,
    tmp_path: Path,
) -> None:
    """The command line is given an id alone: not a row here, so each Agones fleet is asked."""
    kube.add_game_server(AGONES_FLEET, name="by-hand", address="203.0.113.31", port=7603)
    kube.add_game_server(AGONES_FLEET, name="unheard", port=7604)
    key = await registry_key(state)
    entry = await register_server(client, key, address="203.0.113.31", port=7603, state="ready")
    env = environment(
        tmp_path / "cli",
        state.settings.database_url,
        HOMEPORT_FLEETS=json.dumps({"arena": fleet_spec.model_dump(mode="json")}),
    )

    drained = await asyncio.to_thread(cli, env, "fleet", "drain", entry["server_id"])
    assert drained.stdout.strip() == f"{entry['server_id']}: draining"
    beat = await client.put(
        f"/v1/servers/{entry['server_id']}/heartbeat", json={}, headers=bearer(key)
    )
    assert beat.json()["action"] == "drain", beat.json()

    unheard = server_id("default", "unheard")
    refused = await asyncio.to_thread(cli, env, "fleet", "drain", str(unheard), check=False)
    assert refused.returncode == 1, refused.stdout
    assert "registry" in refused.stderr, refused.stderr
    assert kube.states() == {"by-hand": "Ready", "unheard": "Ready"}
