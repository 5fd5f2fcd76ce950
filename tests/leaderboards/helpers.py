"""Small, explicit ways to make what the leaderboard tests need."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from homeport.db.session import unit_of_work
from homeport.identity.models import Account
from homeport.identity.server_keys import KeyKind
from homeport.state import AppState
from tests.factories import bearer, make_key


async def admin_key(state: AppState) -> str:
    return await make_key(state, kind=KeyKind.ADMIN)


async def board_key(state: AppState) -> str:
    """A dedicated server's key with the `leaderboards` scope."""
    return await make_key(state, scopes={"leaderboards"})


async def make_players(state: AppState, count: int, *, prefix: str = "P") -> list[uuid.UUID]:
    """Accounts straight in the database: many players without the login rate limits."""
    now = state.clock.now()
    ids = [uuid.uuid4() for _ in range(count)]
    async with unit_of_work(state.sessions) as session:
        for n, player_id in enumerate(ids):
            session.add(
                Account(
                    id=player_id,
                    email=None,
                    password_hash=None,
                    display_name=f"{prefix}{n}",
                    banned=False,
                    created_at=now,
                    updated_at=now,
                )
            )
    return ids


async def create_board(
    client: httpx.AsyncClient, admin: str, board_id: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/admin/leaderboards", json={"id": board_id, **fields}, headers=bearer(admin)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def submit(
    client: httpx.AsyncClient,
    key: str,
    board_id: str,
    player_id: uuid.UUID,
    score: int,
    subscore: int = 0,
    **fields: Any,
) -> httpx.Response:
    body = {"player_id": str(player_id), "score": score, "subscore": subscore, **fields}
    return await client.post(f"/v1/leaderboards/{board_id}/records", json=body, headers=bearer(key))


async def submitted(
    client: httpx.AsyncClient,
    key: str,
    board_id: str,
    player_id: uuid.UUID,
    score: int,
    subscore: int = 0,
    **fields: Any,
) -> dict[str, Any]:
    response = await submit(client, key, board_id, player_id, score, subscore, **fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def read(client: httpx.AsyncClient, key: str, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def standings(page: dict[str, Any]) -> list[tuple[int, str, int]]:
    """(rank, player id, score) of each record of a page."""
    return [(r["rank"], r["player_id"], r["score"]) for r in page["records"]]
