"""Time-to-match, allocations and the state gauges of fleets and tickets, in process."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from homeport.clock import FakeClock
from homeport.fleet.spec import FleetSpec
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer, make_key
from tests.matchmaking.conftest import QUEUES, World
from tests.observability.scraping import Samples, parse, value


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        fleets={"arena": FleetSpec(scaling={"buffer": 0, "max_servers": 0})},
        matchmaking_queues=QUEUES,
        metrics_state_ttl=0,
    )


@pytest.fixture
async def world(state: AppState, client: httpx.AsyncClient) -> World:
    made = World(state, client)
    await made.ready()
    return made


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


async def test_a_match_observes_each_tickets_wait_and_counts_its_allocation(
    world: World, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await world.servers(1)
    ann, bob = await world.player(), await world.player()
    for player in (ann, bob):
        assert (await world.ticket(player)).status_code == 201
    searching = await scrape(client)
    assert value(searching, "homeport_matchmaking_tickets", queue="duel", state="searching") == 2
    assert value(searching, "homeport_fleet_servers", fleet="arena", state="starting") == 1

    clock.advance(7)
    assert (await world.run_pass()).allocated == 1
    after = await scrape(client)

    duel = {"queue": "duel"}
    histogram = "homeport_matchmaking_time_to_match_seconds"
    assert (
        value(after, f"{histogram}_count", **duel) - value(searching, f"{histogram}_count", **duel)
        == 2
    )
    assert value(after, f"{histogram}_sum", **duel) - value(
        searching, f"{histogram}_sum", **duel
    ) == pytest.approx(14.0)
    for le, moved in (("5.0", 0), ("10.0", 2), ("+Inf", 2)):
        bucket = {**duel, "le": le}
        assert (
            value(after, f"{histogram}_bucket", **bucket)
            - value(searching, f"{histogram}_bucket", **bucket)
        ) == moved, le
    allocated = {"fleet": "arena", "result": "ok", "reason": ""}
    assert (
        value(after, "homeport_fleet_allocations_total", **allocated)
        - value(searching, "homeport_fleet_allocations_total", **allocated)
        == 1
    )
    assert value(after, "homeport_matchmaking_tickets", queue="duel", state="allocated") == 2
    assert value(after, "homeport_matchmaking_tickets", queue="duel", state="searching") == 0


async def test_an_allocation_without_a_ready_server_is_counted_with_its_reason(
    world: World, client: httpx.AsyncClient, state: AppState
) -> None:
    key = await make_key(state, scopes={"fleet"})
    before = await scrape(client)
    refused = await client.post("/v1/fleets/arena/allocate", json={"wait": 0}, headers=bearer(key))
    assert refused.status_code == 503, refused.text
    unknown = await client.post(
        "/v1/fleets/nowhere/allocate", json={"wait": 0}, headers=bearer(key)
    )
    assert unknown.status_code == 404
    after = await scrape(client)
    labels = {"fleet": "arena", "result": "refused", "reason": "no-server-available"}
    counted = "homeport_fleet_allocations_total"
    assert value(after, counted, **labels) - value(before, counted, **labels) == 1
    assert not [k for k in after if k[0] == counted and ("fleet", "nowhere") in k[1]]
