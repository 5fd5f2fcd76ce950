"""Creating and deleting boards; deletion and account erasure remove records; processes agree."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select

from homeport.app import create_app
from homeport.clock import FakeClock
from homeport.db.session import unit_of_work
from homeport.identity.models import Account
from homeport.leaderboards.models import LeaderboardRecord
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type
from tests.leaderboards.helpers import (
    admin_key,
    board_key,
    create_board,
    make_players,
    read,
    submitted,
)


async def test_only_admin_keys_create_and_delete_boards(
    client: httpx.AsyncClient, state: AppState
) -> None:
    admin, key = await admin_key(state), await board_key(state)
    body = {"id": "kills"}
    refused = await client.post("/v1/admin/leaderboards", json=body, headers=bearer(key))
    assert (refused.status_code, problem_type(refused)) == (403, "admin-key-required")
    token = (await client.post("/v1/auth/device", json={"device_id": "a" * 20})).json()
    as_player = await client.post(
        "/v1/admin/leaderboards", json=body, headers=bearer(token["access_token"])
    )
    assert as_player.status_code == 401
    created = await create_board(client, admin, "kills", order="asc", operator="latest")
    assert {k: created[k] for k in ("id", "order", "operator", "reset", "cron")} == {
        "id": "kills",
        "order": "asc",
        "operator": "latest",
        "reset": "never",
        "cron": None,
    }
    again = await client.post("/v1/admin/leaderboards", json=body, headers=bearer(admin))
    assert (again.status_code, problem_type(again)) == (409, "leaderboard-exists")
    no = await client.delete("/v1/admin/leaderboards/kills", headers=bearer(key))
    assert no.status_code == 403
    listed = await read(client, key, "/v1/leaderboards")
    assert [b["id"] for b in listed["leaderboards"]] == ["kills"]


@pytest.mark.parametrize(
    "body",
    [
        {"id": ""},
        {"id": "has space"},
        {"id": "x" * 65},
        {"id": "a", "order": "up"},
        {"id": "a", "operator": "max"},
        {"id": "a", "reset": "hourly"},
        {"id": "a", "reset": "cron"},
        {"id": "a", "reset": "daily", "cron": "0 0 * * *"},
        {"id": "a", "reset": "cron", "cron": "61 * * * *"},
        {"id": "a", "reset": "cron", "cron": "0 0 30 2 *"},
        {"id": "a", "reset": "cron", "cron": "* * *"},
        {"id": "a", "extra": 1},
    ],
)
async def test_bad_boards_are_422(
    client: httpx.AsyncClient, state: AppState, body: dict[str, Any]
) -> None:
    response = await client.post(
        "/v1/admin/leaderboards", json=body, headers=bearer(await admin_key(state))
    )
    assert (response.status_code, problem_type(response)) == (422, "validation-failed")


async def _count_records(state: AppState) -> int:
    async with state.read_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(LeaderboardRecord)) or 0)


async def test_deleting_a_board_removes_its_records_and_a_new_one_starts_empty(
    client: httpx.AsyncClient, state: AppState
) -> None:
    admin, key = await admin_key(state), await board_key(state)
    await create_board(client, admin, "kills")
    a, b = await make_players(state, 2)
    await submitted(client, key, "kills", a, 10)
    await submitted(client, key, "kills", b, 20)
    assert (await read(client, key, f"/v1/leaderboards/kills/records/{a}"))["rank"] == 2
    deleted = await client.delete("/v1/admin/leaderboards/kills", headers=bearer(admin))
    assert deleted.status_code == 204
    assert await _count_records(state) == 0
    gone = await client.get("/v1/leaderboards/kills/records", headers=bearer(key))
    assert (gone.status_code, problem_type(gone)) == (404, "leaderboard-not-found")
    again = await client.delete("/v1/admin/leaderboards/kills", headers=bearer(admin))
    assert again.status_code == 404

    await create_board(client, admin, "kills")
    await submitted(client, key, "kills", a, 1)
    assert (await read(client, key, f"/v1/leaderboards/kills/records/{a}"))["rank"] == 1


async def test_erasing_an_account_removes_its_records(
    client: httpx.AsyncClient, state: AppState
) -> None:
    admin, key = await admin_key(state), await board_key(state)
    await create_board(client, admin, "kills")
    a, b = await make_players(state, 2)
    await submitted(client, key, "kills", a, 10)
    await submitted(client, key, "kills", b, 20)
    async with unit_of_work(state.sessions) as session:
        await session.execute(delete(Account).where(Account.id == b))
    assert await _count_records(state) == 1
    page = await read(client, key, "/v1/leaderboards/kills/records")
    assert [r["player_id"] for r in page["records"]] == [str(a)]


@pytest.fixture
async def second_process(settings: Settings, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """Another app on the same database, as another worker process or replica would be."""
    other = create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=other)
    async with httpx.AsyncClient(transport=transport, base_url="http://other.test") as c:
        yield c
    await other.state.homeport.close()


async def _eventually(check: Callable[[], Awaitable[bool]], clock: FakeClock) -> None:
    """Wait for a change to reach another process: NOTIFY on PostgreSQL, a poll on SQLite."""
    for _ in range(100):
        clock.advance(1)
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the change never arrived")


async def test_other_processes_rank_with_changes_made_elsewhere(
    client: httpx.AsyncClient,
    second_process: httpx.AsyncClient,
    state: AppState,
    clock: FakeClock,
) -> None:
    admin, key = await admin_key(state), await board_key(state)
    await create_board(client, admin, "kills")
    a, b, c = await make_players(state, 3)
    await submitted(client, key, "kills", a, 10)
    await submitted(client, key, "kills", b, 20)
    path = f"/v1/leaderboards/kills/records/{a}"
    assert (await read(second_process, key, path))["rank"] == 2  # builds its index

    await submitted(client, key, "kills", c, 30)

    async def a_is_third() -> bool:
        return bool((await read(second_process, key, path))["rank"] == 3)

    await _eventually(a_is_third, clock)

    await client.delete("/v1/admin/leaderboards/kills", headers=bearer(admin))
    await create_board(client, admin, "kills")
    await submitted(client, key, "kills", a, 1)

    async def a_is_alone() -> bool:
        response = await second_process.get(path, headers=bearer(key))
        return response.status_code == 200 and bool(response.json()["rank"] == 1)

    await _eventually(a_is_alone, clock)


async def test_a_server_key_without_the_scope_cannot_read(
    client: httpx.AsyncClient, state: AppState
) -> None:
    await create_board(client, await admin_key(state), "kills")
    key = await make_key(state, scopes={"validate"})
    response = await client.get("/v1/leaderboards/kills", headers=bearer(key))
    assert (response.status_code, problem_type(response)) == (403, "missing-scope")
