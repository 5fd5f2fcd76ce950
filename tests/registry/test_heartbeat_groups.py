"""Heartbeats written together in one transaction still get one answer each."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from homeport.state import AppState
from tests.factories import bearer, register_server, registry_key


async def test_concurrent_beats_each_get_their_own_answer(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner = await registry_key(state)
    intruder = await registry_key(state)
    ids = [(await register_server(client, owner, port=p))["server_id"] for p in range(1, 11)]

    async def beat(key: str, server_id: str, players: int) -> int:
        response = await client.put(
            f"/v1/servers/{server_id}/heartbeat", json={"players": players}, headers=bearer(key)
        )
        return response.status_code

    calls = [beat(owner, server_id, n % 16) for n in range(5) for server_id in ids]
    calls += [beat(intruder, ids[0], 1), beat(owner, str(uuid.uuid4()), 1), beat(owner, ids[1], 99)]
    statuses = await asyncio.gather(*calls)
    assert statuses[:50] == [200] * 50
    assert statuses[50:] == [403, 404, 422]
    # Beats for one server apply in arrival order: the last valid one wins.
    for server_id in ids:
        server = (await client.get(f"/v1/servers/{server_id}")).json()
        assert server["players"] == 4
