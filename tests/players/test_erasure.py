"""Erasing a player removes the account and everything kept about them, at once."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from homeport.identity.models import Account, Session
from homeport.identity.server_keys import KeyKind
from homeport.leaderboards.models import LeaderboardRecord
from homeport.players.models import (
    InventoryChange,
    InventoryOperation,
    InventoryStack,
    PlayerDocument,
)
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type, register


async def _rows(state: AppState, model: type) -> int:
    async with state.read_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_erasure_takes_everything_and_only_that_player(
    client: httpx.AsyncClient, state: AppState
) -> None:
    admin = bearer(await make_key(state, kind=KeyKind.ADMIN))
    validator = bearer(await make_key(state, scopes={"validate"}))
    gone, kept = await register(client, name="Gone"), await register(client, name="Kept")
    for player in (gone, kept):
        pid = player["player"]["id"]
        saved = await client.put(
            f"/v1/players/{pid}/data/profile/main",
            json={"value": {"xp": 1}, "version": 0},
            headers=admin,
        )
        assert saved.status_code == 200
        granted = await client.post(
            f"/v1/players/{pid}/inventory/grant",
            json={"items": [{"item": "gold", "quantity": 5}]},
            headers={**admin, "Idempotency-Key": "k1"},
        )
        assert granted.status_code == 200
    await client.post("/v1/admin/leaderboards", json={"id": "kills"}, headers=admin)
    for player, score in ((gone, 50), (kept, 10)):
        submitted = await client.post(
            "/v1/leaderboards/kills/records",
            json={"player_id": player["player"]["id"], "score": score},
            headers=admin,
        )
        assert submitted.status_code == 200, submitted.text
    token = {"player_token": gone["access_token"]}
    assert (await client.post("/v1/validate", json=token, headers=validator)).status_code == 200

    erased = await client.delete(f"/v1/admin/players/{gone['player']['id']}", headers=admin)
    assert erased.status_code == 204, erased.text

    for model in (
        Account,
        Session,
        PlayerDocument,
        InventoryStack,
        InventoryChange,
        InventoryOperation,
    ):
        assert await _rows(state, model) == 1, model.__name__
    assert await _rows(state, LeaderboardRecord) == 1
    top = (await client.get("/v1/leaderboards/kills/records", headers=admin)).json()
    assert [r["player_id"] for r in top["records"]] == [kept["player"]["id"]]
    mine = await client.get(f"/v1/leaderboards/kills/records/{kept['player']['id']}", headers=admin)
    assert mine.json()["rank"] == 1
    refused = await client.post("/v1/validate", json=token, headers=validator)
    assert refused.status_code == 401
    assert problem_type(refused) == "session-revoked"
    again = await client.delete(f"/v1/admin/players/{gone['player']['id']}", headers=admin)
    assert again.status_code == 404
    not_admin = await client.delete(f"/v1/admin/players/{kept['player']['id']}", headers=validator)
    assert not_admin.status_code == 403
