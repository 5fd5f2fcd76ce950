"""Every dashboard page renders with data present, escapes what players and servers chose,
and its forms change what the services say: drain, scale, ban, unban, erase."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from homeport.clock import FakeClock
from homeport.db.session import unit_of_work
from homeport.fleet import service as fleet_service
from homeport.identity import service_accounts
from homeport.settings import Settings
from homeport.state import AppState
from tests.dashboard.helpers import login
from tests.factories import PASSWORD, bearer, problem_type, register_server
from tests.hardening.matrix_world import FLEET, Keys, World, make_keys, make_world

XSS = "<script>alert('x')</script>"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        fleets={"arena": FLEET},
        fleet_admin_commands=True,
        matchmaking_queues={"duel": {"fleet": "arena", "teams": 2, "team_size": 1}},
    )


@pytest.fixture
async def world(client: httpx.AsyncClient, state: AppState, clock: FakeClock) -> tuple[Keys, World]:
    keys = await make_keys(client, state, clock)
    return keys, await make_world(client, state, keys)


async def test_every_page_renders_with_data(
    client: httpx.AsyncClient, state: AppState, world: tuple[Keys, World]
) -> None:
    keys, w = world
    await login(client, keys.admin)
    pages = {
        "/admin": "live servers",
        "/admin/servers": w.server_id,
        "/admin/servers?map=&state=ready&q=m": "<table",
        f"/admin/servers/{w.server_id}": "Last heartbeat",
        f"/admin/servers/{w.fleet_server}": "Fleet <a",
        "/admin/servers/rows": w.server_id,
        "/admin/fleets": w.fleet_server,
        "/admin/matchmaking": w.queue,
        f"/admin/players?q={w.player}": w.player,
        f"/admin/players/{w.player}": "gold",
        "/admin/leaderboards": w.board,
        f"/admin/leaderboards/{w.board}": f"/admin/players/{w.player}",
        "/admin/worlds": w.world,
        f"/admin/worlds/{w.world}": "<td>1</td>",
    }
    for path, expected in pages.items():
        answer = await client.get(path)
        assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text[:300]}"
        assert expected in answer.text, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in answer.headers["content-security-policy"]
    # The player's profile shows the document's value and the ledger's grant.
    profile = (await client.get(f"/admin/players/{w.player}")).text
    assert "&#34;xp&#34;: 1" in profile
    assert "+5" in profile
    # A document's key in the matchmaking page: the searching ticket counts.
    assert "<td>1</td>" in (await client.get("/admin/matchmaking")).text


async def test_bad_input_gets_an_html_error_page_never_a_500(
    client: httpx.AsyncClient, state: AppState, world: tuple[Keys, World]
) -> None:
    keys, _ = world
    await login(client, keys.admin)
    for path, status in {
        "/admin/servers/not-a-uuid": 422,
        "/admin/servers/00000000-0000-0000-0000-000000000000": 404,
        "/admin/players/00000000-0000-0000-0000-000000000000": 404,
        "/admin/servers?state=exploding": 422,
        "/admin/servers?cursor=%00%ff": 422,
        "/admin/servers?map=" + "m" * 300: 422,
        "/admin/leaderboards/nope": 404,
        "/admin/leaderboards/" + "x" * 300: 404,
        "/admin/worlds/..%2Fetc": 404,
        "/admin/worlds/nope": 404,
        "/admin/static/nope.js": 404,
        "/admin/players?q=" + "%00" * 10: 200,
    }.items():
        answer = await client.get(path)
        assert answer.status_code == status, f"{path}: {answer.text[:300]}"
        assert answer.headers["content-type"].startswith("text/html"), path


async def test_what_players_and_servers_chose_is_escaped(
    client: httpx.AsyncClient, state: AppState, world: tuple[Keys, World]
) -> None:
    keys, _ = world
    body = {"email": "xss@example.com", "password": PASSWORD, "display_name": XSS}
    player = (await client.post("/v1/auth/register", json=body)).json()["player"]["id"]
    await register_server(client, keys.scoped, name=XSS, map="<b>map</b>", port=9999)
    await login(client, keys.admin)
    for path in (
        "/admin/players?q=script",
        f"/admin/players/{player}",
        "/admin/servers",
        "/admin/servers/rows",
    ):
        text = (await client.get(path)).text
        assert "<script>alert" not in text, path
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in text, path
    assert "&lt;b&gt;map&lt;/b&gt;" in (await client.get("/admin/servers")).text


async def test_drain_and_scale_change_the_fleet(
    client: httpx.AsyncClient, state: AppState, world: tuple[Keys, World]
) -> None:
    keys, w = world
    csrf = await login(client, keys.admin)
    drained = await client.post(
        f"/admin/fleets/arena/servers/{w.fleet_server}/drain", data={"csrf": csrf}
    )
    assert (drained.status_code, drained.headers["location"]) == (303, "/admin/fleets")
    async with state.read_sessions() as session:
        row = await fleet_service.get_server(session, "arena", uuid.UUID(w.fleet_server))
    assert row.state == "draining"
    assert "dashboard" in row.reason
    again = await client.post(
        f"/admin/fleets/other/servers/{w.fleet_server}/drain", data={"csrf": csrf}
    )
    assert again.status_code == 404
    scaled = await client.post("/admin/fleets/arena/scale", data={"csrf": csrf, "replicas": "3"})
    assert scaled.status_code == 303
    async with state.read_sessions() as session:
        assert (await fleet_service.get_fleet(session, "arena")).spec.scaling.replicas == 3
    for bad in ("-1", "x", "99999"):
        refused = await client.post(
            "/admin/fleets/arena/scale", data={"csrf": csrf, "replicas": bad}
        )
        assert refused.status_code == 422, bad
    back = await client.post("/admin/fleets/arena/scale", data={"csrf": csrf, "replicas": ""})
    assert back.status_code == 303
    async with state.read_sessions() as session:
        assert (await fleet_service.get_fleet(session, "arena")).spec.scaling.replicas is None


async def test_ban_unban_and_erase_a_player(
    client: httpx.AsyncClient, state: AppState, world: tuple[Keys, World]
) -> None:
    keys, w = world
    csrf = await login(client, keys.admin)
    banned = await client.post(
        f"/admin/players/{w.player}/ban", data={"csrf": csrf, "reason": "cheating <3"}
    )
    assert (banned.status_code, banned.headers["location"]) == (303, f"/admin/players/{w.player}")
    profile = await client.get(f"/admin/players/{w.player}")
    assert "banned: cheating &lt;3" in profile.text
    refused = await client.post(
        "/v1/validate", json={"player_token": w.player_token}, headers=bearer(keys.admin)
    )
    assert refused.status_code in (401, 403)
    assert problem_type(refused) in ("player-banned", "session-revoked")
    unbanned = await client.post(f"/admin/players/{w.player}/unban", data={"csrf": csrf})
    assert unbanned.status_code == 303
    assert 'id="player-status">active' in (await client.get(f"/admin/players/{w.player}")).text

    unconfirmed = await client.post(f"/admin/players/{w.player}/erase", data={"csrf": csrf})
    assert unconfirmed.status_code == 422
    erased = await client.post(
        f"/admin/players/{w.player}/erase", data={"csrf": csrf, "confirm": "erase"}
    )
    assert (erased.status_code, erased.headers["location"]) == (303, "/admin/players?erased=1")
    async with unit_of_work(state.sessions) as session:
        assert await service_accounts.search_accounts(session, w.player) == []
    assert (await client.get(f"/admin/players/{w.player}")).status_code == 404


async def test_player_search_finds_by_email_and_part_of_the_name(
    client: httpx.AsyncClient, state: AppState, world: tuple[Keys, World]
) -> None:
    keys, _ = world
    body = {"email": "Ann.Smith@example.com", "password": PASSWORD, "display_name": "Ann_50%"}
    ann = (await client.post("/v1/auth/register", json=body)).json()["player"]["id"]
    await login(client, keys.admin)
    for query in ("ann.smith@EXAMPLE.com", "ann_", "50%"):
        found: Any = await client.get("/admin/players", params={"q": query})
        assert ann in found.text, query
    assert ann not in (await client.get("/admin/players", params={"q": "a%0"})).text


async def test_odd_forms_are_refused_with_a_page(
    client: httpx.AsyncClient, state: AppState, world: tuple[Keys, World]
) -> None:
    keys, w = world
    csrf = await login(client, keys.admin)
    ban = f"/admin/players/{w.player}/ban"
    too_many = "&".join(f"f{i}=1" for i in range(60))
    for body, content_type, status in (
        (f"csrf={csrf}&{too_many}", "application/x-www-form-urlencoded", 422),
        (f"csrf={csrf}&reason=" + "r" * 20_000, "application/x-www-form-urlencoded", 413),
        ('{"csrf": "x"}', "application/json", 415),
        (f"csrf={csrf}&reason=%00", "application/x-www-form-urlencoded", 422),
        (b"csrf=" + csrf.encode() + b"&reason=\xff\xfe", "application/x-www-form-urlencoded", 403),
    ):
        answer = await client.post(ban, content=body, headers={"content-type": content_type})
        assert answer.status_code == status, (body[:40], answer.text[:200])
    assert 'id="player-status">active' in (await client.get(f"/admin/players/{w.player}")).text
