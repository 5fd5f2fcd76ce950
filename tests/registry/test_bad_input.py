"""Bad registrations and heartbeats get a 422 problem and change nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from homeport.registry.models import Server
from homeport.state import AppState
from tests.factories import bearer, problem_type, register_server, registry_key

VALID: dict[str, Any] = {"name": "ok", "port": 7777, "max_players": 8}


async def _count(state: AppState) -> int:
    async with state.read_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Server)) or 0)


@pytest.mark.parametrize(
    "change",
    [
        {"players": -1},
        {"players": 9},
        {"max_players": 0},
        {"port": 0},
        {"port": 65536},
        {"port": "7777x"},
        {"name": ""},
        {"name": "x" * 65},
        {"name": "bell\x07"},
        {"tags": ["has space"]},
        {"tags": [f"t{i}" for i in range(17)]},
        {"metadata": {"blob": "x" * 5000}},
        {"private_metadata": {"blob": "x" * 5000}},
        {"metadata": ["not", "an", "object"]},
        {"address": "evil host"},
        {"state": "flying"},
        {"unknown_field": 1},
        {"password_protected": "maybe"},
    ],
)
async def test_bad_registration_is_refused_whole(
    client: httpx.AsyncClient, state: AppState, change: dict[str, Any]
) -> None:
    key = await registry_key(state)
    response = await client.post("/v1/servers", json={**VALID, **change}, headers=bearer(key))
    assert response.status_code == 422, response.text
    assert problem_type(response) == "validation-failed"
    assert await _count(state) == 0


@pytest.mark.parametrize(
    "metadata",
    [
        '{"x": NaN}',
        '{"x": [1, Infinity]}',
        '{"x": "\\ud800"}',  # a lone surrogate, valid JSON text but not valid Unicode
        '{"x": ' + "[" * 40 + "]" * 40 + "}",
        '{"x": ' + "[" * 5000 + "]" * 5000 + "}",
    ],
    ids=["nan", "infinity", "lone-surrogate", "deep", "deeper-than-parsers-go"],
)
async def test_metadata_that_cannot_be_stored_faithfully_is_422(
    client: httpx.AsyncClient, state: AppState, metadata: str
) -> None:
    key = await registry_key(state)
    body = '{"name": "ok", "port": 7777, "max_players": 8, "metadata": ' + metadata + "}"
    response = await client.post("/v1/servers", content=body, headers=bearer(key))
    # Nesting past what the JSON parser itself takes is a body it could not parse: 400.
    assert response.status_code in (400, 422), response.text
    assert problem_type(response) in ("validation-failed", "bad-request")
    assert await _count(state) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"players": -1},
        {"players": 9},
        {"state": "flying"},
        {"map": 5},
        {"player_ids": ["not-a-uuid"]},
        {"extra": True},
        [1, 2],
    ],
)
async def test_bad_heartbeat_changes_nothing(
    client: httpx.AsyncClient, state: AppState, body: Any
) -> None:
    key = await registry_key(state)
    server_id = (await register_server(client, key, players=2, max_players=8))["server_id"]
    response = await client.put(
        f"/v1/servers/{server_id}/heartbeat", json=body, headers=bearer(key)
    )
    assert response.status_code == 422, response.text
    assert problem_type(response) == "validation-failed"
    server = (await client.get(f"/v1/servers/{server_id}")).json()
    assert (server["players"], server["state"], server["map"]) == (2, "starting", "")


async def test_malformed_heartbeat_requests(client: httpx.AsyncClient, state: AppState) -> None:
    key = await registry_key(state)
    server_id = (await register_server(client, key))["server_id"]
    not_uuid = await client.put("/v1/servers/nope/heartbeat", json={}, headers=bearer(key))
    assert not_uuid.status_code == 422
    broken = await client.put(
        f"/v1/servers/{server_id}/heartbeat", content=b"{", headers=bearer(key)
    )
    assert problem_type(broken) == "validation-failed"
    wrong_type = await client.put(
        f"/v1/servers/{server_id}/heartbeat",
        content=b"players=1",
        headers={**bearer(key), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert wrong_type.status_code == 415
    method = await client.post(f"/v1/servers/{server_id}/heartbeat", json={}, headers=bearer(key))
    assert method.status_code == 405
    assert method.headers["allow"] == "PUT"
    huge = await client.put(
        f"/v1/servers/{server_id}/heartbeat",
        content=b'{"map": "' + b"x" * 70_000 + b'"}',
        headers=bearer(key),
    )
    assert huge.status_code == 413
