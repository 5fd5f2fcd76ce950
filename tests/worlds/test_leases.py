"""One writer per world: the lease, taken by saving, kept by writing or heartbeating."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
import pytest

from homeport.clock import FakeClock
from homeport.db.session import unit_of_work
from homeport.fleet import service as fleet_service
from homeport.fleet.models import GameServer
from homeport.fleet.spec import FleetSpec, GameServerState
from homeport.identity.server_keys import KeyKind
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer, fleet_servers, make_key, problem_type, register_server
from tests.worlds.saving import random_chunks, save


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Local storage only: what is tested here does not depend on where the bytes go."""
    return make_settings()


@pytest.fixture
async def shared(client: httpx.AsyncClient, state: AppState) -> tuple[str, str, str]:
    """An admin key and two server keys that may both use the world "w"."""
    admin = await make_key(state, kind=KeyKind.ADMIN)
    made = await client.put("/v1/worlds/w", json={}, headers=bearer(admin))
    assert made.status_code == 201
    assert made.json()["owner"] == ""
    first = await make_key(state, scopes={"worlds", "registry"})
    second = await make_key(state, scopes={"worlds", "registry"})
    return admin, first, second


async def test_a_second_writer_gets_409_until_the_lease_lapses(
    client: httpx.AsyncClient, shared: tuple[str, str, str], clock: FakeClock
) -> None:
    _, first, second = shared
    assert (await save(client, first, "w", random_chunks(2))).status_code == 201
    refused = await save(client, second, "w", random_chunks(2))
    assert refused.status_code == 409
    assert problem_type(refused) == "world-leased"
    assert refused.json()["holder"].startswith("key:")
    assert int(refused.headers["retry-after"]) >= 1
    clock.advance(61)  # worlds_lease_ttl past the last write, and no registry entry
    assert (await save(client, second, "w", random_chunks(2), base=1)).status_code == 201
    back = await save(client, first, "w", random_chunks(2), base=2)
    assert back.status_code == 409


async def test_concurrent_writers_one_wins(
    client: httpx.AsyncClient, shared: tuple[str, str, str]
) -> None:
    _, first, second = shared
    results = await asyncio.gather(
        *(save(client, key, "w", random_chunks(3)) for key in (first, second, first, second))
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(409) >= 2, statuses
    winners = {r.json()["created_by"] for r in results if r.status_code == 201}
    assert len(winners) == 1
    assert all(problem_type(r) == "world-leased" for r in results if r.status_code == 409)


async def test_a_heartbeating_server_keeps_its_lease(
    client: httpx.AsyncClient, shared: tuple[str, str, str], clock: FakeClock, state: AppState
) -> None:
    _, first, second = shared
    server = await register_server(client, first)
    assert (await save(client, first, "w", random_chunks(1))).status_code == 201
    for _ in range(4):  # two minutes without a save, heartbeating all along
        clock.advance(30)
        beat = await client.put(
            f"/v1/servers/{server['server_id']}/heartbeat", json={}, headers=bearer(first)
        )
        assert beat.status_code == 200
    assert (await save(client, second, "w", random_chunks(1))).status_code == 409
    lease_seconds = state.settings.registry_heartbeat_interval * 3
    clock.advance(lease_seconds + 1)  # it stopped heartbeating: crashed
    assert (await save(client, second, "w", random_chunks(1), base=1)).status_code == 201


async def test_release_and_admin_takeover(
    client: httpx.AsyncClient, shared: tuple[str, str, str]
) -> None:
    admin, first, second = shared
    taken = await client.post("/v1/worlds/w/lease", headers=bearer(first))
    assert taken.status_code == 200
    assert taken.json()["holder"].startswith("key:")
    not_yours = await client.delete("/v1/worlds/w/lease", headers=bearer(second))
    assert not_yours.status_code == 409
    assert (await client.delete("/v1/worlds/w/lease", headers=bearer(first))).status_code == 204
    assert (await client.post("/v1/worlds/w/lease", headers=bearer(second))).status_code == 200
    assert (await client.delete("/v1/worlds/w/lease", headers=bearer(admin))).status_code == 204
    assert (await save(client, first, "w", random_chunks(1))).status_code == 201


async def test_a_crashed_fleet_servers_world_goes_to_its_replacement(
    client: httpx.AsyncClient, state: AppState
) -> None:
    configured = state.settings.model_copy(update={"fleets": {"arena": FleetSpec()}})
    await fleet_service.store_configured(state.sessions, state.clock, configured)
    (crashed_id, crashed), (_, replacement) = await fleet_servers(state, client, "arena", 2)
    first = await save(client, crashed, "arena-world", random_chunks(2))
    assert first.status_code == 201, first.text
    detail = await client.get("/v1/worlds/arena-world", headers=bearer(replacement))
    assert detail.json()["world"]["owner"] == "fleet:arena"  # the fleet's, not the server's
    assert (await save(client, replacement, "arena-world", random_chunks(2))).status_code == 409
    async with unit_of_work(state.sessions) as session:
        row = await session.get(GameServer, uuid.UUID(crashed_id))
        assert row is not None
        row.state = GameServerState.CRASHED.value
    again = await save(client, replacement, "arena-world", random_chunks(2), base=1)
    assert again.status_code == 201, again.text
