"""`GET /v1/fleets/{fleet}/servers` for a fleet on Agones: the Fleet's GameServers, read from
the cluster with its label selector, in Homeport's states."""

from __future__ import annotations

import httpx

from homeport.fleet.agones.allocation import server_id
from tests.factories import bearer, problem_type
from tests.fleet.agones.conftest import AGONES_FLEET
from tests.fleet.agones.fake_kube import FakeKube


async def test_game_servers_are_listed_with_their_states_address_and_port(
    kube: FakeKube, client: httpx.AsyncClient, admin: str
) -> None:
    kube.add_game_server(AGONES_FLEET, name="a-ready", state="Ready", port=7401)
    kube.add_game_server(AGONES_FLEET, name="b-starting", state="Scheduled", port=7402)
    kube.add_game_server(AGONES_FLEET, name="c-playing", state="Ready", port=7403, players=3)
    kube.add_game_server(AGONES_FLEET, name="d-unhealthy", state="Unhealthy", port=7404)
    kube.add_game_server("another-fleet", name="e-elsewhere", state="Ready", port=7405)
    allocated = await client.post(
        "/v1/fleets/arena/allocate", json={"match_id": "m-9", "wait": 0}, headers=bearer(admin)
    )
    assert allocated.status_code == 200, allocated.text

    answer = await client.get("/v1/fleets/arena/servers", headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    servers = {s["reason"].split()[1]: s for s in answer.json()["servers"]}
    assert {name: s["state"] for name, s in servers.items()} == {
        "a-ready": "allocated",
        "b-starting": "starting",
        "c-playing": "ready",
        "d-unhealthy": "unhealthy",
    }
    first = servers["a-ready"]
    assert first["id"] == str(server_id("default", "a-ready")) == allocated.json()["server_id"]
    assert (first["address"], first["port"], first["fleet"]) == ("203.0.113.20", 7401, "arena")
    assert first["allocation"]["match_id"] == "m-9"
    assert first["allocation"]["allocation_id"] == allocated.json()["allocation_id"]
    assert servers["c-playing"]["players"] == 3
    (listing,) = kube.of("list_gs")
    assert listing.query["labelSelector"] == [f"agones.dev/fleet={AGONES_FLEET}"]

    one = await client.get(f"/v1/fleets/arena/servers/{first['id']}", headers=bearer(admin))
    assert one.status_code == 200, one.text
    assert one.json()["state"] == "allocated"
    missing = await client.get(
        f"/v1/fleets/arena/servers/{server_id('default', 'e-elsewhere')}", headers=bearer(admin)
    )
    assert missing.status_code == 404
    assert problem_type(missing) == "game-server-not-found"


async def test_the_fleet_counts_its_game_servers_by_state(
    kube: FakeKube, client: httpx.AsyncClient, admin: str
) -> None:
    kube.add_game_server(AGONES_FLEET, name="r1", state="Ready", port=7411)
    kube.add_game_server(AGONES_FLEET, name="r2", state="Ready", port=7412)
    kube.add_game_server(AGONES_FLEET, name="a1", state="Allocated", port=7413)
    kube.add_game_server(AGONES_FLEET, name="s1", state="Scheduled", port=7414)
    kube.add_game_server("another-fleet", name="x1", state="Ready", port=7415)
    counts = {"ready": 2, "allocated": 1, "starting": 1}
    one = await client.get("/v1/fleets/arena", headers=bearer(admin))
    assert one.status_code == 200, one.text
    assert one.json()["servers"] == counts
    listed = await client.get("/v1/fleets", headers=bearer(admin))
    assert {f["name"]: f["servers"] for f in listed.json()["fleets"]} == {"arena": counts}

    kube.forbidden.add("list_gs")  # the cluster stops answering: the fleet is still listed
    listed = await client.get("/v1/fleets", headers=bearer(admin))
    assert listed.status_code == 200, listed.text
    assert {f["name"]: f["servers"] for f in listed.json()["fleets"]} == {"arena": {}}
    one = await client.get("/v1/fleets/arena", headers=bearer(admin))
    assert (one.status_code, one.json()["servers"]) == (200, {})
