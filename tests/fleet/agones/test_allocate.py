"""`POST /v1/fleets/{fleet}/allocate` for a fleet on Agones: a GameServerAllocation per call,
the match written onto the GameServer's annotations, the answer in Homeport's shape."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx

from homeport.fleet.agones.allocation import server_id
from homeport.state import AppState
from tests.factories import bearer, problem_type, register_server, registry_key
from tests.fleet.agones.conftest import AGONES_FLEET
from tests.fleet.agones.fake_kube import FakeKube


async def test_allocation_hands_out_a_ready_game_server_with_the_match_on_it(
    kube: FakeKube, client: httpx.AsyncClient, admin: str
) -> None:
    kube.add_game_server(AGONES_FLEET, name="arena-fleet-a", state="Ready", port=7301)
    players = [str(uuid.uuid4()), str(uuid.uuid4())]
    answer = await client.post(
        "/v1/fleets/arena/allocate",
        json={"match_id": "m-1", "players": players, "metadata": {"map": "dunes"}},
        headers=bearer(admin),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["address"], body["port"]) == ("203.0.113.20", 7301)
    assert body["server_id"] == str(server_id("default", "arena-fleet-a"))
    assert (body["fleet"], body["region"], body["version"]) == ("arena", "eu", "1.4")
    assert body["match_id"] == "m-1"
    game_server = kube.game_servers[("default", "arena-fleet-a")]
    assert game_server["status"]["state"] == "Allocated"
    annotations = game_server["metadata"]["annotations"]
    assert annotations["homeport.dev/match-id"] == "m-1"
    assert annotations["homeport.dev/allocation-id"] == body["allocation_id"]
    assert annotations["homeport.dev/players"] == ",".join(players)
    assert annotations["homeport.dev/metadata"] == '{"map":"dunes"}'


async def test_no_ready_game_server_is_a_503_with_retry_after(
    kube: FakeKube, client: httpx.AsyncClient, admin: str
) -> None:
    kube.add_game_server(AGONES_FLEET, state="Allocated")
    kube.add_game_server(AGONES_FLEET, state="Starting")
    answer = await client.post("/v1/fleets/arena/allocate", json={"wait": 0}, headers=bearer(admin))
    assert answer.status_code == 503, answer.text
    assert problem_type(answer) == "no-server-available"
    assert answer.headers["retry-after"] == "5"
    assert len(kube.of("gsa")) == 1


async def test_selectors_send_the_fleet_and_every_label_asked_for(
    kube: FakeKube, client: httpx.AsyncClient, admin: str
) -> None:
    kube.add_game_server(AGONES_FLEET, labels={"mode": "duel", "map": "dunes"})
    answer = await client.post(
        "/v1/fleets/arena/allocate",
        json={"labels": {"map": "dunes"}, "wait": 0},
        headers=bearer(admin),
    )
    assert answer.status_code == 200, answer.text
    (call,) = kube.of("gsa")
    assert call.path == "/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations"
    assert call.body["spec"]["selectors"] == [
        {
            "matchLabels": {"agones.dev/fleet": AGONES_FLEET, "map": "dunes"},
            "gameServerState": "Ready",
        }
    ]
    assert call.body["spec"]["scheduling"] == "Packed"
    other = await client.post(
        "/v1/fleets/arena/allocate",
        json={"labels": {"map": "cliffs"}, "wait": 0},
        headers=bearer(admin),
    )
    assert other.status_code == 503
    wrong_region = await client.post(
        "/v1/fleets/arena/allocate", json={"region": "us", "wait": 0}, headers=bearer(admin)
    )
    assert wrong_region.status_code == 503
    assert len(kube.of("gsa")) == 2, "a region the fleet is not in is not asked of the cluster"


async def test_concurrent_allocations_take_each_game_server_once(
    kube: FakeKube, client: httpx.AsyncClient, admin: str
) -> None:
    for _ in range(6):
        kube.add_game_server(AGONES_FLEET)

    async def allocate() -> httpx.Response:
        return await client.post(
            "/v1/fleets/arena/allocate", json={"wait": 0}, headers=bearer(admin)
        )

    answers = await asyncio.gather(*(allocate() for _ in range(20)))
    assert Counter(a.status_code for a in answers) == {200: 6, 503: 14}
    granted = [a.json()["server_id"] for a in answers if a.status_code == 200]
    assert len(set(granted)) == 6
    assert set(kube.states().values()) == {"Allocated"}


async def test_contention_is_retried(kube: FakeKube, client: httpx.AsyncClient, admin: str) -> None:
    kube.add_game_server(AGONES_FLEET)
    kube.contention = 2
    answer = await client.post("/v1/fleets/arena/allocate", json={"wait": 0}, headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    assert len(kube.of("gsa")) == 3


async def test_a_game_server_registered_at_its_address_gets_the_allocation_in_its_heartbeat(
    kube: FakeKube, client: httpx.AsyncClient, state: AppState, admin: str
) -> None:
    """Agones' servers share a key: the registry entry at the GameServer's address and port
    is the one allocated, so the allocation and the registry name the same server."""
    kube.add_game_server(AGONES_FLEET, name="arena-fleet-r", port=7311)
    key = await registry_key(state)
    entry = await register_server(client, key, address="203.0.113.20", port=7311, state="ready")
    answer = await client.post(
        "/v1/fleets/arena/allocate", json={"match_id": "m-2", "wait": 0}, headers=bearer(admin)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["server_id"] == entry["server_id"]
    beat = await client.put(
        f"/v1/servers/{entry['server_id']}/heartbeat", json={}, headers=bearer(key)
    )
    assert beat.status_code == 200, beat.text
    assert beat.json()["allocation"]["match_id"] == "m-2"
    assert beat.json()["allocation"]["allocation_id"] == answer.json()["allocation_id"]
    listed = await client.get("/v1/fleets/arena/servers", headers=bearer(admin))
    assert [s["id"] for s in listed.json()["servers"]] == [entry["server_id"]]
