"""Reading a board: top pages, a player's rank, the records around a player, friends lists."""

from __future__ import annotations

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
    standings,
    submitted,
)

PLAYERS = 25


@pytest.fixture
async def board(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> tuple[str, list[uuid.UUID]]:
    """A high-first board where player n scored 10 * n: the last player leads."""
    admin, key = await admin_key(state), await board_key(state)
    await create_board(client, admin, "kills")
    players = await make_players(state, PLAYERS)
    for n, player in enumerate(players):
        await submitted(client, key, "kills", player, 10 * n)
        clock.advance(1)
    return key, players


def rank_of(n: int) -> int:
    """Player n's rank on the board fixture."""
    return PLAYERS - n


async def test_top_pages_follow_cursors_to_the_end(
    client: httpx.AsyncClient, board: tuple[str, list[uuid.UUID]]
) -> None:
    key, players = board
    seen: list[tuple[int, str, int]] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 10} if cursor is None else {"limit": 10, "cursor": cursor}
        page = await read(client, key, "/v1/leaderboards/kills/records", **params)
        seen += standings(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    expected = [(rank_of(n), str(p), 10 * n) for n, p in reversed(list(enumerate(players)))]
    assert seen == expected
    first = (await read(client, key, "/v1/leaderboards/kills/records", limit=1))["records"][0]
    assert first["display_name"] == f"P{PLAYERS - 1}"


async def test_a_players_record_has_its_rank(
    client: httpx.AsyncClient, board: tuple[str, list[uuid.UUID]]
) -> None:
    key, players = board
    for n in (0, 7, PLAYERS - 1):
        record = await read(client, key, f"/v1/leaderboards/kills/records/{players[n]}")
        assert (record["rank"], record["score"]) == (rank_of(n), 10 * n)
    missing = await client.get(
        f"/v1/leaderboards/kills/records/{uuid.uuid4()}", headers=bearer(key)
    )
    assert (missing.status_code, problem_type(missing)) == (404, "record-not-found")


async def test_a_rank_follows_new_submissions_at_once(
    client: httpx.AsyncClient, board: tuple[str, list[uuid.UUID]]
) -> None:
    key, players = board
    await submitted(client, key, "kills", players[0], 1_000)
    assert (await read(client, key, f"/v1/leaderboards/kills/records/{players[0]}"))["rank"] == 1
    # Everyone else moved down one.
    record = await read(client, key, f"/v1/leaderboards/kills/records/{players[PLAYERS - 1]}")
    assert record["rank"] == 2


@pytest.mark.parametrize(
    ("n", "limit", "first_rank"),
    [
        (PLAYERS - 1, 5, 1),  # the leader: the window starts at the top
        (PLAYERS - 2, 5, 1),
        (12, 5, rank_of(12) - 2),  # the middle: two above, two below
        (12, 4, rank_of(12) - 1),
        (1, 5, PLAYERS - 4),  # near the bottom: the window ends at the last record
        (0, 5, PLAYERS - 4),
        (0, 1, PLAYERS),
    ],
)
async def test_around_a_player_stays_full_at_the_edges(
    client: httpx.AsyncClient,
    board: tuple[str, list[uuid.UUID]],
    n: int,
    limit: int,
    first_rank: int,
) -> None:
    key, players = board
    page = await read(
        client, key, "/v1/leaderboards/kills/records", around=str(players[n]), limit=limit
    )
    ranks = [r["rank"] for r in page["records"]]
    assert ranks == list(range(first_rank, first_rank + limit))
    assert str(players[n]) in [r["player_id"] for r in page["records"]]
    for record in page["records"]:
        index = players.index(uuid.UUID(record["player_id"]))
        assert record["rank"] == rank_of(index)


async def test_around_a_player_without_a_record_is_404(
    client: httpx.AsyncClient, board: tuple[str, list[uuid.UUID]]
) -> None:
    key, _ = board
    response = await client.get(
        "/v1/leaderboards/kills/records", params={"around": str(uuid.uuid4())}, headers=bearer(key)
    )
    assert (response.status_code, problem_type(response)) == (404, "record-not-found")


async def test_friends_records_come_best_first_with_their_ranks(
    client: httpx.AsyncClient, board: tuple[str, list[uuid.UUID]]
) -> None:
    key, players = board
    friends = [players[3], players[20], uuid.uuid4(), players[11]]
    response = await client.get(
        "/v1/leaderboards/kills/records",
        params={"player_id": [str(p) for p in friends]},
        headers=bearer(key),
    )
    assert response.status_code == 200, response.text
    assert standings(response.json()) == [
        (rank_of(20), str(players[20]), 200),
        (rank_of(11), str(players[11]), 110),
        (rank_of(3), str(players[3]), 30),
    ]
    too_many = {"player_id": [str(uuid.uuid4()) for _ in range(101)]}
    refused = await client.get(
        "/v1/leaderboards/kills/records", params=too_many, headers=bearer(key)
    )
    assert refused.status_code == 422


async def test_players_may_read_and_keys_need_the_scope(
    client: httpx.AsyncClient, state: AppState, board: tuple[str, list[uuid.UUID]]
) -> None:
    _, players = board
    token = (await client.post("/v1/auth/device", json={"device_id": "r" * 20})).json()
    player = bearer(token["access_token"])
    for path in (
        "/v1/leaderboards",
        "/v1/leaderboards/kills",
        "/v1/leaderboards/kills/periods",
        "/v1/leaderboards/kills/records",
        f"/v1/leaderboards/kills/records/{players[0]}",
    ):
        assert (await client.get(path, headers=player)).status_code == 200, path
    no_scope = await make_key(state, scopes={"registry"})
    refused = await client.get("/v1/leaderboards/kills/records", headers=bearer(no_scope))
    assert (refused.status_code, problem_type(refused)) == (403, "missing-scope")
    anonymous = await client.get("/v1/leaderboards/kills/records")
    assert (anonymous.status_code, problem_type(anonymous)) == (401, "token-missing")
    forged = await client.get("/v1/leaderboards/kills/records", headers=bearer("x.y.z"))
    assert (forged.status_code, problem_type(forged)) == (401, "token-invalid")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"cursor": "!!!"},
        {"cursor": "eyJhIjoxfQ"},
        {"around": "nope"},
        {"period": "yesterday"},
        {"period": "x" * 40},
        {"cursor": "abc", "around": "00000000-0000-0000-0000-000000000001"},
        {"unknown": "1"},
    ],
)
async def test_bad_read_parameters_are_4xx_problems(
    client: httpx.AsyncClient, board: tuple[str, list[uuid.UUID]], params: dict[str, str | int]
) -> None:
    key, _ = board
    response = await client.get(
        "/v1/leaderboards/kills/records", params=params, headers=bearer(key)
    )
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_cursor_of_another_board_is_refused(
    client: httpx.AsyncClient, state: AppState, board: tuple[str, list[uuid.UUID]]
) -> None:
    key, _ = board
    await create_board(client, await admin_key(state), "other")
    cursor = (await read(client, key, "/v1/leaderboards/kills/records", limit=2))["next_cursor"]
    response = await client.get(
        "/v1/leaderboards/other/records", params={"cursor": cursor}, headers=bearer(key)
    )
    assert (response.status_code, problem_type(response)) == (422, "validation-failed")


async def test_unknown_boards_are_404(client: httpx.AsyncClient, state: AppState) -> None:
    key = await board_key(state)
    for path in (
        "/v1/leaderboards/none",
        "/v1/leaderboards/none/records",
        "/v1/leaderboards/none/periods",
    ):
        response = await client.get(path, headers=bearer(key))
        assert (response.status_code, problem_type(response)) == (404, "leaderboard-not-found")
