"""The authorization matrix's rows for the admin dashboard (`/admin`).

Dashboard routes take no API credential: a session cookie from `POST /admin/login` and, for
state changes, its CSRF token. So each row has a ninth column, `session`: a logged-in
operator. The eight API credentials are sent as Bearer headers without a cookie and must all be
treated as nobody: pages redirect to the login (303), state changes answer 401.

Only the `session` column can change anything, and it runs last, so one world serves a row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi.routing import APIRoute

from homeport.state import AppState
from tests.dashboard.helpers import login
from tests.hardening.matrix_world import CREDENTIALS, Keys, World, credential, make_world

DASHBOARD_CREDENTIALS = (*CREDENTIALS, "session")
DashboardCall = Callable[[World, Keys], tuple[str, dict[str, str] | None]]
"""Given the world and the keys: the path and the form to post (None for a GET)."""

PAGE = (303,) * 8 + (200,)
"""Pages: the login for anyone without a session, whatever API credential they bring."""
FORM = (401,) * 8 + (303,)
"""State changes: 401 without a session; redirected to the result with one."""
PUBLIC = (200,) * 9


def _get(template: str) -> DashboardCall:
    return lambda w, _: (template.format(w=w), None)


def _post(template: str, **form: str) -> DashboardCall:
    return lambda w, _: (template.format(w=w), dict(form))


DASHBOARD_MATRIX: dict[tuple[str, str], tuple[DashboardCall, tuple[int, ...]]] = {
    ("GET", "/admin/login"): (_get("/admin/login"), PUBLIC),
    ("POST", "/admin/login"): (
        lambda _, keys: ("/admin/login", {"key": keys.admin}),
        (303,) * 9,  # the form's admin key logs in, whatever else the request carries
    ),
    ("POST", "/admin/logout"): (_post("/admin/logout"), FORM),
    ("GET", "/admin/static/{name}"): (_get("/admin/static/dashboard.css"), PUBLIC),
    ("GET", "/admin/{rest:path}"): (_get("/admin/no/such/page"), (404,) * 9),
    ("GET", "/admin"): (_get("/admin"), PAGE),
    ("GET", "/admin/servers"): (_get("/admin/servers"), PAGE),
    ("GET", "/admin/servers/rows"): (_get("/admin/servers/rows"), PAGE),
    ("GET", "/admin/servers/{server_id}"): (_get("/admin/servers/{w.server_id}"), PAGE),
    ("GET", "/admin/fleets"): (_get("/admin/fleets"), PAGE),
    ("POST", "/admin/fleets/{fleet}/scale"): (
        _post("/admin/fleets/{w.empty_fleet}/scale", replicas="2"),
        FORM,
    ),
    ("POST", "/admin/fleets/{fleet}/servers/{server_id}/drain"): (
        _post("/admin/fleets/arena/servers/{w.fleet_server}/drain"),
        FORM,
    ),
    ("GET", "/admin/matchmaking"): (_get("/admin/matchmaking"), PAGE),
    ("GET", "/admin/players"): (_get("/admin/players?q={w.player}"), PAGE),
    ("GET", "/admin/players/{player_id}"): (_get("/admin/players/{w.player}"), PAGE),
    ("POST", "/admin/players/{player_id}/ban"): (
        _post("/admin/players/{w.player}/ban", reason="matrix"),
        FORM,
    ),
    ("POST", "/admin/players/{player_id}/unban"): (_post("/admin/players/{w.player}/unban"), FORM),
    ("POST", "/admin/players/{player_id}/erase"): (
        _post("/admin/players/{w.player}/erase", confirm="erase"),
        FORM,
    ),
    ("GET", "/admin/leaderboards"): (_get("/admin/leaderboards"), PAGE),
    ("GET", "/admin/leaderboards/{board_id}"): (_get("/admin/leaderboards/{w.board}"), PAGE),
    ("GET", "/admin/worlds"): (_get("/admin/worlds"), PAGE),
    ("GET", "/admin/worlds/{name}"): (_get("/admin/worlds/{w.world}"), PAGE),
}


def undocumented_routes(routes: list[Any]) -> set[tuple[str, str]]:
    """Routes left out of the API document (the dashboard's pages). FastAPI may keep an
    included router as one entry that holds its routes (`original_router`)."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found |= undocumented_routes(included.routes)
        elif isinstance(route, APIRoute) and not route.include_in_schema:
            found |= {(method, route.path) for method in route.methods or ()}
    return found


async def run_dashboard_matrix(client: httpx.AsyncClient, state: AppState, keys: Keys) -> list[str]:
    """Every cell of `DASHBOARD_MATRIX`; what answered otherwise than the table says."""
    wrong: list[str] = []
    for (method, route), (call, expected) in DASHBOARD_MATRIX.items():
        world = await make_world(client, state, keys, saved_world=route.startswith("/admin/worlds"))
        for kind, status in zip(DASHBOARD_CREDENTIALS, expected, strict=True):
            client.cookies.clear()
            headers: dict[str, str] = {}
            path, form = call(world, keys)
            if kind == "session":
                csrf = await login(client, keys.admin)
                form = None if form is None else {**form, "csrf": csrf}
            else:
                headers = credential(kind, world, keys)
            response = await client.request(method, path, data=form, headers=headers)
            if response.status_code != status:
                wrong.append(
                    f"{method} {route} as {kind}: {response.status_code}, expected {status}"
                    f" ({response.text[:120]})"
                )
            if response.status_code in (401, 403):
                assert response.headers["content-type"] == "application/problem+json", path
            elif response.status_code != 303:
                assert response.headers["content-type"].startswith(("text/", "image/")), path
    client.cookies.clear()
    return wrong
