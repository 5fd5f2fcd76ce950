"""The samples behind the charts: taken by a leader loop, pruned after a day, and drawn as
the overview's SVG lines."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select

from homeport.background import leader_loops
from homeport.clock import FakeClock
from homeport.dashboard import samples
from homeport.dashboard.models import StatsSample
from homeport.db.session import unit_of_work
from homeport.fleet import service as fleet_service
from homeport.identity.server_keys import KeyKind
from homeport.settings import Settings
from homeport.state import AppState
from tests.dashboard.helpers import login
from tests.factories import bearer, fleet_servers, make_key, register_server
from tests.hardening.matrix_world import FLEET

_PATH = re.compile(r'<path class="series" d="([^"]*)"')


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # Leases of hours: the chart test moves time by an hour without heartbeats.
    return make_settings(
        fleets={"arena": FLEET}, fleet_admin_commands=True, registry_heartbeat_interval=3600
    )


async def _server_with_players(client: httpx.AsyncClient, key: str, players: int) -> str:
    server = await register_server(client, key, name="S", port=7000 + players)
    beat = await client.put(
        f"/v1/servers/{server['server_id']}/heartbeat",
        json={"players": players},
        headers=bearer(key),
    )
    assert beat.status_code == 200, beat.text
    return str(server["server_id"])


async def _count(state: AppState) -> int:
    async with state.read_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(StatsSample)) or 0)


async def test_the_leader_loop_samples_servers_players_and_fleet_states(
    client: httpx.AsyncClient, state: AppState
) -> None:
    await fleet_service.store_configured(state.sessions, state.clock, state.settings)
    key = await make_key(state, scopes={"registry"})
    await _server_with_players(client, key, 3)
    await _server_with_players(client, key, 4)
    await fleet_servers(state, client, "arena", 2)
    loop = next(loop for loop in leader_loops(state) if loop.name == "stats-samples")
    assert loop.interval == state.settings.dashboard_sample_interval
    await loop.work()
    async with state.read_sessions() as session:
        [sample] = await samples.samples_since(session, state.clock.now())
    assert sample.servers == 4  # two plain, two of the fleet
    assert sample.players_online == 7
    assert sample.servers_by_state == {"starting": 2, "ready": 2}
    assert sample.fleet_by_state == {"starting": 2}  # no agent runs to see them ready
    assert sample.tickets_searching == 0


async def test_samples_older_than_a_day_are_pruned(state: AppState, clock: FakeClock) -> None:
    for _ in range(3):
        async with unit_of_work(state.sessions) as session:
            await samples.take_sample(session, clock)
        clock.advance(12 * 3600)
    assert await _count(state) == 3
    async with unit_of_work(state.sessions) as session:
        assert await samples.prune_samples(session, clock) == 1
    assert await _count(state) == 2


async def test_the_overview_charts_draw_the_last_hours_samples(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    key = await make_key(state, scopes={"registry"})
    async with unit_of_work(state.sessions) as session:
        await samples.take_sample(session, clock)  # two hours before the chart's end: not shown
    clock.advance(3600)
    servers: list[str] = []
    for players in (1, 5, 2):
        clock.advance(20 * 60)
        servers.append(await _server_with_players(client, key, players))
        async with unit_of_work(state.sessions) as session:
            await samples.take_sample(session, clock)
    await login(client, await make_key(state, kind=KeyKind.ADMIN))
    page = (await client.get("/admin")).text
    players_path, servers_path = _PATH.findall(page)
    players_y = [float(step.split()[1]) for step in players_path[2:].split(" L ")]
    servers_y = [float(step.split()[1]) for step in servers_path[2:].split(" L ")]
    assert len(players_y) == 3
    # Online: 1, then 1 + 5 = 6, then 6 + 2 = 8 — each higher up (smaller y) than the last.
    assert players_y[0] > players_y[1] > players_y[2]
    assert servers_y[0] > servers_y[1] > servers_y[2]
    assert "Players online: 8" in page
    assert "Servers: 3" in page
    assert 'data-points="3"' in page
    clock.advance(3601)
    later = (await client.get("/admin")).text
    assert _PATH.findall(later) == []  # every sample is older than an hour now
    assert "no samples yet" in later
