"""Submitting records: the operators, the order, ties, and what is refused."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from homeport.clock import FakeClock
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type
from tests.leaderboards.helpers import (
    admin_key,
    board_key,
    create_board,
    make_players,
    read,
    submit,
    submitted,
)


@pytest.fixture
async def keys(state: AppState) -> tuple[str, str]:
    return await admin_key(state), await board_key(state)


async def test_best_keeps_the_better_record_on_a_high_first_board(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock, keys: tuple[str, str]
) -> None:
    admin, key = keys
    await create_board(client, admin, "kills", order="desc", operator="best")
    (player,) = await make_players(state, 1)
    first = await submitted(client, key, "kills", player, 50, 3, metadata={"map": "island"})
    assert (first["score"], first["subscore"], first["changed"]) == (50, 3, True)
    clock.advance(10)
    worse = await submitted(client, key, "kills", player, 40, 9, metadata={"map": "desert"})
    assert (worse["score"], worse["subscore"], worse["changed"]) == (50, 3, False)
    assert worse["metadata"] == {"map": "island"}
    assert worse["reached_at"] == first["reached_at"]
    better_sub = await submitted(client, key, "kills", player, 50, 4)
    assert (better_sub["score"], better_sub["subscore"], better_sub["changed"]) == (50, 4, True)
    assert better_sub["reached_at"] != first["reached_at"]
    record = await read(client, key, f"/v1/leaderboards/kills/records/{player}")
    assert (record["rank"], record["score"], record["subscore"]) == (1, 50, 4)


async def test_best_on_a_low_first_board_keeps_the_lower_record(
    client: httpx.AsyncClient, state: AppState, keys: tuple[str, str]
) -> None:
    admin, key = keys
    await create_board(client, admin, "laps", order="asc", operator="best")
    (player,) = await make_players(state, 1)
    await submitted(client, key, "laps", player, 61_250)
    assert (await submitted(client, key, "laps", player, 65_000))["score"] == 61_250
    assert (await submitted(client, key, "laps", player, 59_900))["score"] == 59_900


async def test_latest_overwrites_and_increment_adds(
    client: httpx.AsyncClient, state: AppState, keys: tuple[str, str]
) -> None:
    admin, key = keys
    await create_board(client, admin, "rating", operator="latest")
    await create_board(client, admin, "xp", operator="increment")
    (player,) = await make_players(state, 1)
    await submitted(client, key, "rating", player, 1500, metadata={"tier": "gold"})
    latest = await submitted(client, key, "rating", player, 1200)
    assert (latest["score"], latest["metadata"]) == (1200, {})
    await submitted(client, key, "xp", player, 100, 1)
    await submitted(client, key, "xp", player, 250, 2)
    total = await submitted(client, key, "xp", player, -50, 0)
    assert (total["score"], total["subscore"]) == (300, 3)


async def test_increment_past_the_score_limit_is_refused_and_not_written(
    client: httpx.AsyncClient, state: AppState, keys: tuple[str, str]
) -> None:
    admin, key = keys
    await create_board(client, admin, "xp", operator="increment")
    (player,) = await make_players(state, 1)
    await submitted(client, key, "xp", player, 2**53 - 10)
    refused = await submit(client, key, "xp", player, 100)
    assert refused.status_code == 422
    assert problem_type(refused) == "score-out-of-range"
    record = await read(client, key, f"/v1/leaderboards/xp/records/{player}")
    assert record["score"] == 2**53 - 10


async def test_ties_rank_by_subscore_then_who_got_there_first_then_player_id(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock, keys: tuple[str, str]
) -> None:
    admin, key = keys
    await create_board(client, admin, "ties")
    a, b, c, d = await make_players(state, 4)
    await submitted(client, key, "ties", a, 100, 1)
    clock.advance(1)
    await submitted(client, key, "ties", b, 100, 1)  # same as a, but later
    await submitted(client, key, "ties", c, 100, 2)  # better subscore
    await submitted(client, key, "ties", d, 100, 1)  # same time as b: player id decides
    low, high = sorted([b, d])
    page = await read(client, key, "/v1/leaderboards/ties/records")
    assert [r["player_id"] for r in page["records"]] == [str(c), str(a), str(low), str(high)]
    assert [r["rank"] for r in page["records"]] == [1, 2, 3, 4]
    for rank, player in enumerate([c, a, low, high], start=1):
        record = await read(client, key, f"/v1/leaderboards/ties/records/{player}")
        assert record["rank"] == rank


async def test_concurrent_submissions_each_get_their_own_answer(
    client: httpx.AsyncClient, state: AppState, keys: tuple[str, str]
) -> None:
    admin, key = keys
    await create_board(client, admin, "xp", operator="increment")
    players = await make_players(state, 5)
    stranger = uuid.uuid4()
    calls = [submit(client, key, "xp", p, 1) for _ in range(4) for p in players]
    calls += [submit(client, key, "xp", stranger, 1), submit(client, key, "nope", players[0], 1)]
    responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses[:20]] == [200] * 20
    assert [problem_type(r) for r in responses[20:]] == [
        "player-not-found",
        "leaderboard-not-found",
    ]
    for player in players:
        record = await read(client, key, f"/v1/leaderboards/xp/records/{player}")
        assert record["score"] == 4


async def test_submissions_need_a_server_key_with_the_scope(
    client: httpx.AsyncClient, state: AppState, keys: tuple[str, str]
) -> None:
    admin, _ = keys
    await create_board(client, admin, "kills")
    (player,) = await make_players(state, 1)
    registry_only = await make_key(state, scopes={"registry"})
    body = {"player_id": str(player), "score": 1}
    path = "/v1/leaderboards/kills/records"
    no_scope = await client.post(path, json=body, headers=bearer(registry_only))
    assert (no_scope.status_code, problem_type(no_scope)) == (403, "missing-scope")
    token = (await client.post("/v1/auth/device", json={"device_id": "d" * 20})).json()
    as_player = await client.post(path, json=body, headers=bearer(token["access_token"]))
    assert (as_player.status_code, problem_type(as_player)) == (401, "server-key-invalid")
    nothing = await client.post(path, json=body)
    assert nothing.status_code == 401
    assert (await client.post(path, json=body, headers=bearer(admin))).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"score": 1},
        {"player_id": "not-a-uuid", "score": 1},
        {"player_id": "00000000-0000-0000-0000-000000000001", "score": "many"},
        {"player_id": "00000000-0000-0000-0000-000000000001", "score": 2**53},
        {"player_id": "00000000-0000-0000-0000-000000000001", "score": 1, "subscore": -(2**60)},
        {"player_id": "00000000-0000-0000-0000-000000000001", "score": 1, "metadata": []},
        {
            "player_id": "00000000-0000-0000-0000-000000000001",
            "score": 1,
            "metadata": {"a": "x" * 2100},
        },
        {"player_id": "00000000-0000-0000-0000-000000000001", "score": 1, "rank": 1},
    ],
)
async def test_bad_submissions_are_422_problems(
    client: httpx.AsyncClient, keys: tuple[str, str], body: dict[str, object]
) -> None:
    admin, key = keys
    await create_board(client, admin, "kills")
    response = await client.post("/v1/leaderboards/kills/records", json=body, headers=bearer(key))
    assert response.status_code == 422, response.text
    assert problem_type(response) == "validation-failed"


async def test_malformed_bodies_and_board_ids_are_refused(
    client: httpx.AsyncClient, keys: tuple[str, str]
) -> None:
    _, key = keys
    for content in (b"{", b"[]", b"null", b"\xff"):
        response = await client.post(
            "/v1/leaderboards/kills/records", content=content, headers=bearer(key)
        )
        assert response.status_code == 422
    bad_id = await client.post(
        "/v1/leaderboards/%20bad/records", json={"score": 1}, headers=bearer(key)
    )
    assert bad_id.status_code == 422
    wrong_type = await client.post(
        "/v1/leaderboards/kills/records",
        content=b"score=1",
        headers={**bearer(key), "Content-Type": "text/plain"},
    )
    assert wrong_type.status_code == 415


async def test_unknown_player_or_board_is_404_and_nothing_is_written(
    client: httpx.AsyncClient, state: AppState, keys: tuple[str, str]
) -> None:
    admin, key = keys
    await create_board(client, admin, "kills")
    unknown = await submit(client, key, "kills", uuid.uuid4(), 5)
    assert (unknown.status_code, problem_type(unknown)) == (404, "player-not-found")
    (player,) = await make_players(state, 1)
    no_board = await submit(client, key, "missing", player, 5)
    assert (no_board.status_code, problem_type(no_board)) == (404, "leaderboard-not-found")
    page = await read(client, key, "/v1/leaderboards/kills/records")
    assert page["records"] == []
