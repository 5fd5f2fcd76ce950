"""The server browser: filters, sorting and cursor pages that hold while servers change."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from homeport.app import create_app
from homeport.clock import FakeClock
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer, problem_type, register, register_server, registry_key


async def _names(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/v1/servers", params=params)
    assert response.status_code == 200, response.text
    return [s["name"] for s in response.json()["servers"]]


@pytest.fixture
async def fleet(client: httpx.AsyncClient, state: AppState) -> str:
    key = await registry_key(state)
    specs = [
        ("Alpha", {"map": "island", "mode": "pvp", "region": "eu", "players": 4, "tags": ["hc"]}),
        ("Bravo", {"map": "island", "mode": "pve", "region": "us", "players": 16}),
        ("Charlie", {"map": "desert", "mode": "pvp", "region": "eu", "players": 0}),
        ("Delta_100%", {"map": "desert", "version": "2.0", "password_protected": True}),
        ("Echo", {"map": "island", "region": "eu", "players": 9, "tags": ["hc", "Modded"]}),
    ]
    for port, (name, fields) in enumerate(specs, start=7000):
        await register_server(client, key, name=name, port=port, max_players=16, **fields)
    return key


async def test_filters(client: httpx.AsyncClient, fleet: str) -> None:
    assert await _names(client, map="island") == ["Bravo", "Echo", "Alpha"]
    assert await _names(client, mode="pvp", region="eu") == ["Alpha", "Charlie"]
    assert await _names(client, version="2.0") == ["Delta_100%"]
    assert await _names(client, tag="hc") == ["Echo", "Alpha"]
    assert await _names(client, tag=["hc", "modded"]) == ["Echo"]
    assert await _names(client, tag="MODDED") == ["Echo"]  # case-blind on both databases
    assert await _names(client, not_full="true", map="island") == ["Echo", "Alpha"]
    assert await _names(client, not_empty="true", map="desert") == []
    assert await _names(client, has_password="true") == ["Delta_100%"]
    assert len(await _names(client, has_password="false")) == 4
    assert await _names(client, q="ECH") == ["Echo"]
    # LIKE's wildcards are matched literally.
    assert await _names(client, q="_100%") == ["Delta_100%"]
    assert await _names(client, q="%") == ["Delta_100%"]
    assert await _names(client, state="ready") == []
    assert await _names(client, sort="name") == ["Alpha", "Bravo", "Charlie", "Delta_100%", "Echo"]


async def test_bad_queries_are_422(client: httpx.AsyncClient, fleet: str) -> None:
    for params in (
        {"sort": "random"},
        {"limit": 0},
        {"not_full": "perhaps"},
        {"cursor": "garbage!"},
        {"tag": "a b"},
        {"color": "red"},
    ):
        response = await client.get("/v1/servers", params=params)
        assert response.status_code == 422, params
        assert problem_type(response) == "validation-failed"
    page = (await client.get("/v1/servers", params={"limit": 2})).json()
    wrong_sort = await client.get(
        "/v1/servers", params={"cursor": page["next_cursor"], "sort": "name"}
    )
    assert wrong_sort.status_code == 422


def _cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        ("newest", _cursor("newest", "2026-01-01T00:00:00", uuid.uuid4().hex)),  # naive
        ("newest", _cursor("newest", "0001-01-01T00:00:00+23:59", uuid.uuid4().hex)),
        ("newest", _cursor("newest", "9999-12-31T23:59:59+00:00" + "0" * 64, uuid.uuid4().hex)),
        ("players", _cursor("players", 2**70, uuid.uuid4().hex)),
        ("players", _cursor("players", -1, uuid.uuid4().hex)),
        ("players", _cursor("players", True, uuid.uuid4().hex)),
        ("name", _cursor("name", "nul\x00byte", uuid.uuid4().hex)),
        ("name", _cursor("name", "x" * 300, uuid.uuid4().hex)),
        ("name", _cursor("name", "ok", "not-a-uuid")),
        ("name", _cursor("name", "ok")),
    ],
    ids=[
        "naive-time",
        "before-year-1",
        "long-time",
        "huge-count",
        "negative-count",
        "bool-count",
        "nul-in-name",
        "long-name",
        "bad-id",
        "no-id",
    ],
)
async def test_crafted_cursors_are_422(
    client: httpx.AsyncClient, fleet: str, sort: str, cursor: str
) -> None:
    response = await client.get("/v1/servers", params={"sort": sort, "cursor": cursor})
    assert response.status_code == 422, response.text
    assert problem_type(response) == "validation-failed"


async def test_a_search_for_control_characters_is_422(
    client: httpx.AsyncClient, fleet: str
) -> None:
    response = await client.get("/v1/servers", params={"q": "nul\x00"})
    assert response.status_code == 422, response.text


async def test_pages_hold_while_servers_change(
    client: httpx.AsyncClient, state: AppState, fleet: str
) -> None:
    first = (await client.get("/v1/servers", params={"limit": 2, "sort": "name"})).json()
    assert [s["name"] for s in first["servers"]] == ["Alpha", "Bravo"]
    # Meanwhile a server that sorts before the cursor registers, and another leaves.
    key = await registry_key(state)
    await register_server(client, key, name="Aardvark", port=9000)
    charlie = next(
        s for s in (await client.get("/v1/servers", params={"q": "charlie"})).json()["servers"]
    )
    await client.delete(f"/v1/servers/{charlie['id']}", headers=bearer(fleet))
    rest = (
        await client.get(
            "/v1/servers", params={"limit": 2, "sort": "name", "cursor": first["next_cursor"]}
        )
    ).json()
    assert [s["name"] for s in rest["servers"]] == ["Delta_100%", "Echo"]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize("sort", ["players", "name", "newest"])
async def test_walking_every_page_sees_each_server_once(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock, sort: str
) -> None:
    key = await registry_key(state)
    for port in range(1, 24):
        clock.advance(0.001)
        await register_server(client, key, name=f"s{port % 5}", port=port, players=port % 4)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 5, "sort": sort}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/servers", params=params)).json()
        seen += [s["id"] for s in page["servers"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 23


async def test_page_size_is_capped_by_settings(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> None:
    app = create_app(make_settings(registry_page_size_max=3), clock=clock)
    state = app.state.homeport
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            key = await registry_key(state)
            for port in range(1, 6):
                await register_server(client, key, port=port)
            page = (await client.get("/v1/servers", params={"limit": 100})).json()
            assert len(page["servers"]) == 3
            assert page["next_cursor"] is not None
    finally:
        await state.close()


async def test_browser_may_require_a_player(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> None:
    app = create_app(make_settings(registry_list_requires_player=True), clock=clock)
    state = app.state.homeport
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            key = await registry_key(state)
            server_id = (await register_server(client, key))["server_id"]
            refused = await client.get("/v1/servers")
            assert refused.status_code == 401
            assert problem_type(refused) == "token-missing"
            assert (await client.get(f"/v1/servers/{server_id}")).status_code == 401
            token = (await register(client))["access_token"]
            allowed = await client.get("/v1/servers", headers=bearer(token))
            assert [s["id"] for s in allowed.json()["servers"]] == [server_id]
    finally:
        await state.close()
