"""An app with a fleet and matchmaking queues, ready servers without processes, and players."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from homeport.fleet import service as fleet_service
from homeport.fleet.spec import FleetSpec
from homeport.matchmaking import queue_admin
from homeport.matchmaking.passes import Matchmaker, PassReport
from homeport.matchmaking.queues import QueueSpec
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer, fleet_servers

QUEUES = {
    "duel": QueueSpec(fleet="arena", teams=2, team_size=1, allocation_wait=0, ticket_timeout=60),
    "squads": QueueSpec(fleet="arena", teams=2, team_size=3, max_party=3, allocation_wait=0),
}


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        fleets={"arena": FleetSpec(scaling={"buffer": 0, "max_servers": 0})},
        matchmaking_queues=QUEUES,
        auth_address_max_attempts=100_000,
    )


class World:
    def __init__(self, state: AppState, client: httpx.AsyncClient) -> None:
        self.state = state
        self.client = client
        self.matchmaker = Matchmaker(state.settings, state.clock, state.sessions)
        self._devices = 0

    async def ready(self) -> None:
        await fleet_service.store_configured(
            self.state.sessions, self.state.clock, self.state.settings
        )
        await queue_admin.store_configured(
            self.state.sessions, self.state.clock, self.state.settings
        )

    async def player(self) -> dict[str, Any]:
        self._devices += 1
        device = {"device_id": f"mm-device-{self._devices:06d}-0000"}
        answer = await self.client.post("/v1/auth/device", json=device)
        assert answer.status_code in (200, 201), answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def servers(self, count: int) -> list[tuple[str, str]]:
        return await fleet_servers(self.state, self.client, "arena", count)

    async def ticket(
        self, player: dict[str, Any], queue: str = "duel", **body: Any
    ) -> httpx.Response:
        return await self.client.post(
            "/v1/matchmaking/tickets",
            json={"queue": queue, **body},
            headers=bearer(player["access_token"]),
        )

    async def read(self, player: dict[str, Any], ticket_id: str, **params: Any) -> dict[str, Any]:
        answer = await self.client.get(
            f"/v1/matchmaking/tickets/{ticket_id}",
            params=params,
            headers=bearer(player["access_token"]),
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def run_pass(self) -> PassReport:
        return await self.matchmaker.run_pass()


@pytest.fixture
async def world(state: AppState, client: httpx.AsyncClient) -> World:
    made = World(state, client)
    await made.ready()
    return made
