"""Allocation through the API: atomic under concurrency, selectors, waiting, the server's view."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from homeport.db.session import unit_of_work
from homeport.fleet import service
from homeport.fleet.models import GameServer
from homeport.fleet.spec import FleetSpec
from homeport.fleet.spec import GameServerState as S
from homeport.identity.server_keys import KeyKind
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer, fleet_servers, make_key, problem_type

SPEC = FleetSpec(
    command=["unused"], region="eu", version="1.2", labels={"mode": "duel"}, port_range=(7000, 7999)
)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(fleets={"arena": SPEC}, fleet_allocation_timeout=5)


async def ready_servers(state: AppState, client: httpx.AsyncClient, count: int) -> list[str]:
    async with unit_of_work(state.sessions) as session:
        await service.sync_configured(session, state.clock, state.settings)
    made = await fleet_servers(state, client, "arena", count, version="1.2")
    return [key for _, key in made]


async def test_concurrent_allocations_never_share_a_server(
    state: AppState, client: httpx.AsyncClient
) -> None:
    await ready_servers(state, client, 30)
    admin = await make_key(state, kind=KeyKind.ADMIN)

    async def allocate() -> httpx.Response:
        return await client.post(
            "/v1/fleets/arena/allocate", json={"wait": 0}, headers=bearer(admin)
        )

    answers = await asyncio.gather(*(allocate() for _ in range(100)))
    codes = Counter(a.status_code for a in answers)
    assert codes == {200: 30, 503: 70}, codes
    granted = [a.json() for a in answers if a.status_code == 200]
    assert len({g["server_id"] for g in granted}) == 30, "no server handed out twice"
    assert all(problem_type(a) == "no-server-available" for a in answers if a.status_code == 503)
    async with state.sessions() as session:
        allocated = await session.scalar(
            select(func.count()).where(GameServer.state == S.ALLOCATED.value)
        )
    assert allocated == 30


async def test_the_server_learns_its_allocation_in_its_heartbeat(
    state: AppState, client: httpx.AsyncClient
) -> None:
    (key,) = await ready_servers(state, client, 1)
    fleet_key = await make_key(state, scopes={"fleet"})
    players = [str(uuid.uuid4()), str(uuid.uuid4())]
    answer = await client.post(
        "/v1/fleets/arena/allocate",
        json={"match_id": "m-1", "players": players, "metadata": {"map": "dust"}},
        headers=bearer(fleet_key),
    )
    assert answer.status_code == 200, answer.text
    granted = answer.json()
    listed = await client.get(f"/v1/servers/{granted['server_id']}")
    assert granted["port"] == listed.json()["port"]
    assert (granted["address"], granted["region"]) == ("127.0.0.1", "eu")
    assert granted["match_id"] == "m-1"
    beat = await client.put(
        f"/v1/servers/{granted['server_id']}/heartbeat", json={}, headers=bearer(key)
    )
    assert beat.status_code == 200, beat.text
    told = beat.json()
    assert told["action"] is None
    assert told["allocation"]["allocation_id"] == granted["allocation_id"]
    assert told["allocation"]["players"] == players
    assert told["allocation"]["metadata"] == {"map": "dust"}
    listed = await client.get(
        f"/v1/fleets/arena/servers/{granted['server_id']}", headers=bearer(fleet_key)
    )
    assert listed.json()["state"] == "allocated"
    still_ready = await client.put(
        f"/v1/servers/{granted['server_id']}/heartbeat",
        json={"state": "ready"},
        headers=bearer(key),
    )
    assert still_ready.status_code == 200
    browsed = await client.get(f"/v1/servers/{granted['server_id']}")
    assert browsed.json()["state"] == "in_match", "allocated servers leave the ready list"


@pytest.mark.parametrize(
    ("selector", "found"),
    [
        ({"region": "eu"}, True),
        ({"region": "us"}, False),
        ({"version": "1.2", "labels": {"mode": "duel"}}, True),
        ({"labels": {"mode": "ctf"}}, False),
        ({"version": "2.0"}, False),
    ],
)
async def test_selectors_match_region_version_and_labels(
    state: AppState, client: httpx.AsyncClient, selector: dict[str, Any], found: bool
) -> None:
    await ready_servers(state, client, 1)
    admin = await make_key(state, kind=KeyKind.ADMIN)
    answer = await client.post(
        "/v1/fleets/arena/allocate", json={**selector, "wait": 0}, headers=bearer(admin)
    )
    assert answer.status_code == (200 if found else 503), answer.text


async def test_with_none_ready_it_asks_for_a_server_and_gives_up_after_the_wait(
    state: AppState, client: httpx.AsyncClient
) -> None:
    async with unit_of_work(state.sessions) as session:
        await service.sync_configured(session, state.clock, state.settings)
    admin = await make_key(state, kind=KeyKind.ADMIN)
    answer = await client.post(
        "/v1/fleets/arena/allocate", json={"wait": 0.3}, headers=bearer(admin)
    )
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    async with state.sessions() as session:
        states = list(await session.scalars(select(GameServer.state)))
    assert states == [S.SCHEDULED.value], "one server was asked for"


async def test_a_drain_request_reaches_the_server_in_its_heartbeat(
    state: AppState, client: httpx.AsyncClient
) -> None:
    (key,) = await ready_servers(state, client, 1)
    admin = await make_key(state, kind=KeyKind.ADMIN)
    listed = await client.get("/v1/fleets/arena/servers", headers=bearer(admin))
    (server,) = listed.json()["servers"]
    drained = await client.post(
        f"/v1/fleets/arena/servers/{server['id']}/drain", headers=bearer(admin)
    )
    assert drained.status_code == 202, drained.text
    assert drained.json()["state"] == "draining"
    beat = await client.put(f"/v1/servers/{server['id']}/heartbeat", json={}, headers=bearer(key))
    assert beat.json()["action"] == "drain"


async def test_unknown_fleet_and_missing_scope_are_refused(
    state: AppState, client: httpx.AsyncClient
) -> None:
    admin = await make_key(state, kind=KeyKind.ADMIN)
    missing = await client.post("/v1/fleets/nope/allocate", json={}, headers=bearer(admin))
    assert problem_type(missing) == "fleet-not-found"
    validate_only = await make_key(state)
    refused = await client.post("/v1/fleets/arena/allocate", json={}, headers=bearer(validate_only))
    assert problem_type(refused) == "missing-scope"
