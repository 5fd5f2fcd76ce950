"""Inventory: idempotent grants, never-negative consumes, the ledger — on both databases."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from homeport.clock import FakeClock
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type, register


@pytest.fixture
async def server(state: AppState) -> dict[str, str]:
    return bearer(await make_key(state, scopes={"players:write"}))


@pytest.fixture
async def player(client: httpx.AsyncClient) -> dict[str, Any]:
    return await register(client)


async def _change(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    player_id: str,
    kind: str,
    items: dict[str, int],
    key: str | None = None,
    reason: str = "",
) -> httpx.Response:
    body = {"items": [{"item": i, "quantity": q} for i, q in items.items()], "reason": reason}
    extra = {"Idempotency-Key": key or str(uuid.uuid4())}
    return await client.post(
        f"/v1/players/{player_id}/inventory/{kind}", json=body, headers={**headers, **extra}
    )


async def _held(
    client: httpx.AsyncClient, headers: dict[str, str], player_id: str
) -> dict[str, int]:
    response = await client.get(f"/v1/players/{player_id}/inventory", headers=headers)
    assert response.status_code == 200, response.text
    return {s["item"]: s["quantity"] for s in response.json()["items"]}


async def test_a_retried_grant_applies_once(
    client: httpx.AsyncClient, server: dict[str, str], player: dict[str, Any]
) -> None:
    pid = player["player"]["id"]
    first = await _change(client, server, pid, "grant", {"gold": 100, "sword": 1}, key="quest-7")
    assert first.status_code == 200, first.text
    assert first.json()["items"] == [
        {"item": "gold", "delta": 100, "balance": 100},
        {"item": "sword", "delta": 1, "balance": 1},
    ]
    assert "idempotent-replayed" not in first.headers
    retry = await _change(client, server, pid, "grant", {"gold": 100, "sword": 1}, key="quest-7")
    assert retry.status_code == 200
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert await _held(client, server, pid) == {"gold": 100, "sword": 1}
    # The same key for a different request is a client bug, not a retry.
    other = await _change(client, server, pid, "grant", {"gold": 5}, key="quest-7")
    assert other.status_code == 422
    assert problem_type(other) == "idempotency-key-reused"


async def test_concurrent_retries_grant_once(
    client: httpx.AsyncClient, server: dict[str, str], player: dict[str, Any]
) -> None:
    pid = player["player"]["id"]
    answers = await asyncio.gather(
        *(_change(client, server, pid, "grant", {"gem": 3}, key="drop-1") for _ in range(8))
    )
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["operation_id"] for a in answers}) == 1
    assert await _held(client, server, pid) == {"gem": 3}


async def test_consumes_never_go_negative(
    client: httpx.AsyncClient, server: dict[str, str], player: dict[str, Any]
) -> None:
    pid = player["player"]["id"]
    await _change(client, server, pid, "grant", {"potion": 5, "arrow": 2})
    short = await _change(client, server, pid, "consume", {"potion": 1, "arrow": 3})
    assert short.status_code == 409
    assert problem_type(short) == "insufficient-items"
    assert short.json()["item"] == "arrow"
    assert await _held(client, server, pid) == {"potion": 5, "arrow": 2}  # nothing consumed

    answers = await asyncio.gather(
        *(_change(client, server, pid, "consume", {"potion": 2}) for _ in range(6))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 409, 409, 409, 409]
    assert await _held(client, server, pid) == {"potion": 1, "arrow": 2}
    done = await _change(client, server, pid, "consume", {"arrow": 2})
    assert done.json()["items"] == [{"item": "arrow", "delta": -2, "balance": 0}]
    assert await _held(client, server, pid) == {"potion": 1}


async def test_ledger_records_every_change(
    client: httpx.AsyncClient, server: dict[str, str], player: dict[str, Any]
) -> None:
    pid = player["player"]["id"]
    for n in range(1, 6):
        await _change(client, server, pid, "grant", {"coin": n}, reason=f"round {n}")
    await _change(client, server, pid, "consume", {"coin": 4}, reason="shop")
    own = bearer(player["access_token"])
    page = (await client.get("/v1/players/me/inventory/ledger?limit=4", headers=own)).json()
    assert [(e["delta"], e["balance"]) for e in page["entries"]] == [
        (-4, 11),
        (5, 15),
        (4, 10),
        (3, 6),
    ]
    assert page["entries"][0]["reason"] == "shop"
    assert page["entries"][0]["actor"].startswith("key:")
    rest = await client.get(
        f"/v1/players/me/inventory/ledger?limit=4&cursor={page['next_cursor']}", headers=own
    )
    assert [e["delta"] for e in rest.json()["entries"]] == [2, 1]
    assert rest.json()["next_cursor"] is None


async def test_who_may_change_and_read(
    client: httpx.AsyncClient, state: AppState, server: dict[str, str], player: dict[str, Any]
) -> None:
    pid = player["player"]["id"]
    own = bearer(player["access_token"])
    other = bearer((await register(client))["access_token"])
    reader = bearer(await make_key(state, scopes={"players:read"}))
    assert (await _change(client, own, pid, "grant", {"gold": 1})).status_code == 403
    assert (await _change(client, reader, pid, "grant", {"gold": 1})).status_code == 403
    assert (await client.get(f"/v1/players/{pid}/inventory", headers=own)).status_code == 200
    assert (await client.get(f"/v1/players/{pid}/inventory", headers=reader)).status_code == 200
    assert (await client.get(f"/v1/players/{pid}/inventory", headers=other)).status_code == 403
    missing = await client.post(
        f"/v1/players/{pid}/inventory/grant",
        json={"items": [{"item": "gold", "quantity": 1}]},
        headers=server,
    )
    assert missing.status_code == 428
    assert problem_type(missing) == "idempotency-key-required"
    nobody = await _change(client, server, str(uuid.uuid4()), "grant", {"gold": 1})
    assert problem_type(nobody) == "player-not-found"
    for items in ({"gold": 0}, {"bad item": 1}, {"gold": 10**16}):
        assert (await _change(client, server, pid, "grant", items)).status_code == 422


async def test_keys_are_forgotten_after_their_time(
    client: httpx.AsyncClient,
    state: AppState,
    clock: FakeClock,
    server: dict[str, str],
    player: dict[str, Any],
) -> None:
    pid = player["player"]["id"]
    await _change(client, server, pid, "grant", {"gold": 1}, key="k")
    clock.advance(state.settings.players_idempotency_ttl + 1)
    again = await _change(client, server, pid, "grant", {"gold": 1}, key="k")
    assert "idempotent-replayed" not in again.headers
    assert await _held(client, server, pid) == {"gold": 2}
