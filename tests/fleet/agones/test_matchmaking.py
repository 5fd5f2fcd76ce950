"""A matchmaking queue on an Agones fleet: the match's server comes from a
GameServerAllocation, with the match and its players on the GameServer's annotations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from homeport.fleet import allocation
from homeport.fleet.spec import FleetSpec
from homeport.matchmaking import queue_admin
from homeport.matchmaking.passes import Matchmaker
from homeport.matchmaking.queues import QueueSpec
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer, register_server, registry_key
from tests.fleet.agones.conftest import AGONES_FLEET
from tests.fleet.agones.fake_kube import FakeKube

DUEL = QueueSpec(fleet="arena", teams=2, team_size=1, allocation_wait=0, ticket_timeout=60)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], fleet_spec: FleetSpec) -> Settings:
    return make_settings(
        fleets={"arena": fleet_spec},
        matchmaking_queues={"duel": DUEL},
        auth_address_max_attempts=100_000,
    )


async def _player(client: httpx.AsyncClient, number: int) -> dict[str, str]:
    answer = await client.post("/v1/auth/device", json={"device_id": f"agones-device-{number:06d}"})
    assert answer.status_code in (200, 201), answer.text
    body = answer.json()
    return {"token": body["access_token"], "id": body["player"]["id"]}


async def _queued(
    client: httpx.AsyncClient, *numbers: int
) -> tuple[list[dict[str, str]], list[str]]:
    """Players, each with a ticket in the duel queue."""
    players = [await _player(client, n) for n in numbers]
    tickets = []
    for player in players:
        answer = await client.post(
            "/v1/matchmaking/tickets", json={"queue": "duel"}, headers=bearer(player["token"])
        )
        assert answer.status_code == 201, answer.text
        tickets.append(answer.json()["id"])
    return players, tickets


async def test_a_match_gets_an_agones_game_server_with_the_match_annotated(
    kube: FakeKube, client: httpx.AsyncClient, state: AppState, admin: str
) -> None:
    await queue_admin.store_configured(state.sessions, state.clock, state.settings)
    kube.add_game_server(AGONES_FLEET, name="duel-1", port=7501)
    key = await registry_key(state)  # the fleet's shared key, from its Secret
    entry = await register_server(client, key, address="203.0.113.20", port=7501, state="ready")
    players, tickets = await _queued(client, 1, 2)

    report = await Matchmaker(state.settings, state.clock, state.sessions).run_pass()
    assert (report.proposed, report.allocated) == (1, 1), report

    seen = []
    for player, ticket in zip(players, tickets, strict=True):
        answer = await client.get(
            f"/v1/matchmaking/tickets/{ticket}", headers=bearer(player["token"])
        )
        seen.append(answer.json())
    assert {s["state"] for s in seen} == {"allocated"}
    assert {(s["server"]["address"], s["server"]["port"]) for s in seen} == {("203.0.113.20", 7501)}
    assert {s["server"]["id"] for s in seen} == {entry["server_id"]}
    for player, ticket in zip(players, seen, strict=True):
        body = {"player_token": ticket["connect_token"], "server_id": entry["server_id"]}
        answer = await client.post("/v1/validate", json=body, headers=bearer(key))
        assert answer.status_code == 200, answer.text
        assert answer.json()["player"]["id"] == player["id"]
    annotations = kube.game_servers[("default", "duel-1")]["metadata"]["annotations"]
    assert annotations["homeport.dev/match-id"] == seen[0]["match_id"]
    assert sorted(annotations["homeport.dev/players"].split(",")) == sorted(
        p["id"] for p in players
    )


async def test_no_game_server_sends_the_tickets_back_to_searching(
    kube: FakeKube, client: httpx.AsyncClient, state: AppState, admin: str
) -> None:
    await queue_admin.store_configured(state.sessions, state.clock, state.settings)
    players = [await _player(client, n) for n in (3, 4)]
    for player in players:
        answer = await client.post(
            "/v1/matchmaking/tickets", json={"queue": "duel"}, headers=bearer(player["token"])
        )
        assert answer.status_code == 201, answer.text
    report = await Matchmaker(state.settings, state.clock, state.sessions).run_pass()
    assert (report.proposed, report.allocated, report.failed) == (1, 0, 1), report
    assert len(kube.of("gsa")) == 1


async def test_an_abandoned_match_lets_its_game_server_go(
    kube: FakeKube,
    client: httpx.AsyncClient,
    state: AppState,
    admin: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A player cancels while the GameServer is being allocated: nobody will join it, so it is
    told to drain through its registry entry (it then shuts down through its SDK, and Agones
    replaces it) instead of staying Allocated to a match that never starts."""
    await queue_admin.store_configured(state.sessions, state.clock, state.settings)
    kube.add_game_server(AGONES_FLEET, name="duel-2", address="203.0.113.21", port=7502)
    key = await registry_key(state)
    entry = await register_server(client, key, address="203.0.113.21", port=7502, state="ready")
    players, tickets = await _queued(client, 5, 6)
    real = allocation.allocate

    async def cancel_first(*args: Any, **kwargs: Any) -> allocation.Allocated:
        found = await real(*args, **kwargs)
        answer = await client.delete(
            f"/v1/matchmaking/tickets/{tickets[0]}", headers=bearer(players[0]["token"])
        )
        assert answer.status_code == 200, answer.text
        return found

    monkeypatch.setattr(allocation, "allocate", cancel_first)
    report = await Matchmaker(state.settings, state.clock, state.sessions).run_pass()
    assert report.abandoned == 1, report
    assert kube.game_servers[("default", "duel-2")]["status"]["state"] == "Allocated"
    beat = await client.put(
        f"/v1/servers/{entry['server_id']}/heartbeat", json={}, headers=bearer(key)
    )
    assert beat.status_code == 200, beat.text
    assert beat.json()["action"] == "drain", beat.json()
    assert beat.json()["allocation"] is None
