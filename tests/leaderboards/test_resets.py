"""Resets start a new period by the clock; old periods stay readable as past seasons."""

from __future__ import annotations

import httpx
import pytest

from homeport.clock import FakeClock
from homeport.state import AppState
from tests.factories import bearer, problem_type
from tests.leaderboards.helpers import (
    admin_key,
    board_key,
    create_board,
    make_players,
    read,
    standings,
    submitted,
)

# The fake clock starts on Tuesday 2030-01-01 00:00 UTC.
CASES = [
    ({"reset": "daily"}, "2030-01-01T00:00:00Z", 86_400, "2030-01-02T00:00:00Z"),
    ({"reset": "weekly"}, "2029-12-31T00:00:00Z", 6 * 86_400, "2030-01-07T00:00:00Z"),
    ({"reset": "monthly"}, "2030-01-01T00:00:00Z", 31 * 86_400, "2030-02-01T00:00:00Z"),
    (
        {"reset": "cron", "cron": "30 12 * * *"},
        "2029-12-31T12:30:00Z",
        45_000,
        "2030-01-01T12:30:00Z",
    ),
    (
        {"reset": "cron", "cron": "0 0 1 1,4,7,10 *"},
        "2030-01-01T00:00:00Z",
        90 * 86_400,
        "2030-04-01T00:00:00Z",
    ),
]


@pytest.mark.parametrize(("rules", "first", "seconds", "second"), CASES)
async def test_a_reset_starts_a_new_period_and_keeps_the_old_one(
    client: httpx.AsyncClient,
    state: AppState,
    clock: FakeClock,
    rules: dict[str, str],
    first: str,
    seconds: int,
    second: str,
) -> None:
    admin, key = await admin_key(state), await board_key(state)
    board = await create_board(client, admin, "season", **rules)
    assert board["current_period"]["period"] == first
    a, b = await make_players(state, 2)
    assert (await submitted(client, key, "season", a, 10))["period"] == first
    await submitted(client, key, "season", b, 5)

    clock.advance(seconds - 1)
    assert (await submitted(client, key, "season", b, 7))["period"] == first
    clock.advance(1)
    after = await submitted(client, key, "season", b, 3)
    assert (after["period"], after["score"]) == (second, 3)

    current = await read(client, key, "/v1/leaderboards/season/records")
    assert (current["period"], standings(current)) == (second, [(1, str(b), 3)])
    past = await read(client, key, "/v1/leaderboards/season/records", period=first)
    assert standings(past) == [(1, str(a), 10), (2, str(b), 7)]
    record = await read(client, key, f"/v1/leaderboards/season/records/{b}", period=first)
    assert (record["rank"], record["score"]) == (2, 7)
    missing = await client.get(f"/v1/leaderboards/season/records/{a}", headers=bearer(key))
    assert problem_type(missing) == "record-not-found"

    periods = (await read(client, key, "/v1/leaderboards/season/periods"))["periods"]
    assert [(p["period"], p["current"]) for p in periods] == [(second, True), (first, False)]
    assert periods[1]["ends_at"] == periods[0]["starts_at"].replace("+00:00", "Z")


async def test_a_board_that_never_resets_has_one_period(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    admin, key = await admin_key(state), await board_key(state)
    await create_board(client, admin, "forever")
    (player,) = await make_players(state, 1)
    await submitted(client, key, "forever", player, 1)
    clock.advance(400 * 86_400)
    assert (await submitted(client, key, "forever", player, 2))["period"] == "all"
    page = await read(client, key, "/v1/leaderboards/forever/records", period="all")
    assert standings(page) == [(1, str(player), 2)]
    periods = (await read(client, key, "/v1/leaderboards/forever/periods"))["periods"]
    assert periods == [{"period": "all", "starts_at": None, "ends_at": None, "current": True}]


async def test_an_empty_current_period_is_listed_and_readable(
    client: httpx.AsyncClient, state: AppState
) -> None:
    admin, key = await admin_key(state), await board_key(state)
    await create_board(client, admin, "daily", reset="daily")
    periods = (await read(client, key, "/v1/leaderboards/daily/periods"))["periods"]
    assert [p["period"] for p in periods] == ["2030-01-01T00:00:00Z"]
    page = await read(client, key, "/v1/leaderboards/daily/records", period="current")
    assert page["records"] == []


@pytest.mark.parametrize(
    "period",
    ["all", "2030-01-01T05:00:00Z", "2029-12-30T00:00:00Z", "2030-13-01T00:00:00Z", "last week"],
)
async def test_periods_the_board_never_had_are_404(
    client: httpx.AsyncClient, state: AppState, period: str
) -> None:
    admin, key = await admin_key(state), await board_key(state)
    await create_board(client, admin, "daily", reset="daily")
    response = await client.get(
        "/v1/leaderboards/daily/records", params={"period": period}, headers=bearer(key)
    )
    assert (response.status_code, problem_type(response)) == (404, "period-not-found")
