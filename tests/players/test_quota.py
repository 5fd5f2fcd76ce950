"""Storage limits per player, and the odd inputs that must be refused rather than break."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type, register


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        players_player_max_bytes=2048, players_owner_max_bytes=2048, players_max_documents=12
    )


@pytest.fixture
async def server(state: AppState) -> dict[str, str]:
    return bearer(await make_key(state, scopes={"players:write"}))


@pytest.fixture
async def player(client: httpx.AsyncClient) -> dict[str, Any]:
    return await register(client)


async def test_tiny_documents_still_count_and_are_capped(
    client: httpx.AsyncClient, server: dict[str, str], player: dict[str, Any]
) -> None:
    me, pid = bearer(player["access_token"]), player["player"]["id"]
    key = "k" * 100
    writes = [{"collection": "settings", "key": f"{key}{i:02d}", "value": {}} for i in range(12)]
    # Empty documents cost their keys and rows: 12 of these are more than the 2 KiB budget.
    full = await client.post("/v1/players/me/data", json={"writes": writes}, headers=me)
    assert full.status_code == 413
    assert problem_type(full) == "player-data-full"
    saved = await client.post("/v1/players/me/data", json={"writes": writes[:6]}, headers=me)
    assert saved.status_code == 200, saved.text
    # And however small, at most 12 documents in all.
    more = [{"collection": "progress", "key": f"p{i}", "value": {}, "version": 0} for i in range(7)]
    capped = await client.post(f"/v1/players/{pid}/data", json={"writes": more}, headers=server)
    assert capped.status_code == 413
    assert capped.json()["max_documents"] == 12
    assert (
        await client.post(f"/v1/players/{pid}/data", json={"writes": more[:6]}, headers=server)
    ).status_code == 200


async def test_a_player_filling_their_budget_never_blocks_a_server_save(
    client: httpx.AsyncClient, server: dict[str, str], player: dict[str, Any]
) -> None:
    me, pid = bearer(player["access_token"]), player["player"]["id"]
    blob = {"b": "x" * 1800}
    assert (
        await client.put("/v1/players/me/data/settings/a", json={"value": blob}, headers=me)
    ).status_code == 200
    refused = await client.put("/v1/players/me/data/settings/b", json={"value": blob}, headers=me)
    assert problem_type(refused) == "player-data-full"
    saved = await client.put(
        f"/v1/players/{pid}/data/profile/main", json={"value": blob, "version": 0}, headers=server
    )
    assert saved.status_code == 200, saved.text


async def test_shrinking_and_deleting_work_above_a_lowered_limit(
    client: httpx.AsyncClient, state: AppState, server: dict[str, str], player: dict[str, Any]
) -> None:
    pid = player["player"]["id"]
    path = f"/v1/players/{pid}/data/profile"
    for key in ("a", "b"):
        body = {"value": {"b": "x" * 900}, "version": 0}
        assert (await client.put(f"{path}/{key}", json=body, headers=server)).status_code == 200
    # An operator lowers the limit below what the player already holds.
    object.__setattr__(state.settings, "players_player_max_bytes", 1024)
    grow = await client.put(
        f"{path}/a", json={"value": {"b": "x" * 950}, "version": 1}, headers=server
    )
    assert problem_type(grow) == "player-data-full"
    shrink = await client.put(f"{path}/a", json={"value": {"b": "x"}, "version": 1}, headers=server)
    assert shrink.status_code == 200, shrink.text
    gone = await client.delete(f"{path}/b", headers={**server, "If-Match": "1"})
    assert gone.status_code == 204, gone.text


async def test_a_batch_may_create_and_delete_the_same_document(
    client: httpx.AsyncClient, server: dict[str, str], player: dict[str, Any]
) -> None:
    pid = player["player"]["id"]
    writes = [
        {"collection": "progress", "key": "tmp", "value": {"x": 1}, "version": 0},
        {"op": "delete", "collection": "progress", "key": "tmp", "version": 1},
    ]
    response = await client.post(f"/v1/players/{pid}/data", json={"writes": writes}, headers=server)
    assert response.status_code == 200, response.text
    assert [w["version"] for w in response.json()["writes"]] == [1, 0]
    assert (
        await client.get(f"/v1/players/{pid}/data/progress/tmp", headers=server)
    ).status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_odd_if_match_values_are_422(
    client: httpx.AsyncClient, server: dict[str, str], player: dict[str, Any], method: str
) -> None:
    path = f"/v1/players/{player['player']['id']}/data/profile/main"
    for value in ("\u00b2", "1.5", "-1", "99999999999"):
        body: dict[str, Any] | None = (
            {"value": {}} if method == "PUT" else {} if method == "PATCH" else None
        )
        headers = [(k.encode(), v.encode()) for k, v in server.items()]
        headers.append((b"If-Match", value.encode("latin-1")))
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 422, (value, response.text)


async def test_inventory_odd_inputs(
    client: httpx.AsyncClient, state: AppState, server: dict[str, str], player: dict[str, Any]
) -> None:
    pid = player["player"]["id"]
    huge = await client.get(
        f"/v1/players/{pid}/inventory/ledger?cursor=9999999999999999999", headers=server
    )
    assert huge.status_code == 422
    body = {"items": [{"item": "gold", "quantity": 1}], "reason": "a\u0000b"}
    nul = await client.post(
        f"/v1/players/{pid}/inventory/grant", json=body, headers={**server, "Idempotency-Key": "n"}
    )
    assert nul.status_code == 422
    # Another server reusing a key for its own grant is told so, never silently replayed.
    other = bearer(await make_key(state, scopes={"players:write"}))
    body["reason"] = "daily"
    for key in (server, other):
        answer = await client.post(
            f"/v1/players/{pid}/inventory/grant",
            json=body,
            headers={**key, "Idempotency-Key": "d1"},
        )
    assert answer.status_code == 422
    assert problem_type(answer) == "idempotency-key-reused"
