"""Login, logout, the overview page and the static files; `install` wires the dashboard."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse

from homeport.dashboard import routes_game, routes_players, routes_servers
from homeport.dashboard.auth import COOKIE, Sessions, is_https, same_origin
from homeport.dashboard.charts import line_chart
from homeport.dashboard.deps import AdminSessionDep, FormDep, dashboard_sessions, router
from homeport.dashboard.render import page, read_form, see_other
from homeport.dashboard.samples import samples_since
from homeport.deps import ClientAddressDep, StateDep
from homeport.errors import NotFound, RateLimited
from homeport.fleet import service as fleet_service
from homeport.identity.errors import AdminKeyRequired, ServerKeyInvalid
from homeport.identity.service_keys import authenticate_key, require_admin
from homeport.matchmaking import queue_admin
from homeport.registry.service import live_totals
from homeport.state import AppState

routes = router()
CHART_WINDOW = timedelta(hours=1)
STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
STATIC = {
    item.name: (item.read_bytes(), STATIC_TYPES[item.name[item.name.rfind(".") :]])
    for item in resources.files("homeport.dashboard").joinpath("static").iterdir()
    if item.name.endswith(tuple(STATIC_TYPES))
}


@routes.get("/admin/static/{name}")
async def static(name: str) -> Response:
    found = STATIC.get(name)
    if found is None:
        raise NotFound("No such file")
    body, media_type = found
    return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=300"})


@routes.get("/admin/login")
async def login_page(request: Request) -> HTMLResponse:
    return page(request, "login.html", error=None)


@routes.post("/admin/login")
async def login(request: Request, state: StateDep, address: ClientAddressDep) -> Response:
    """Exchange an admin key for a session cookie. Failures are counted per address (the
    same limit as player logins), so keys cannot be guessed at speed."""
    response: Response
    sessions = dashboard_sessions(request)
    limiter = sessions.failed_logins
    wait = limiter.retry_after(address)
    if wait is not None:
        error = RateLimited("Too many failed logins; try again later", retry_after=wait)
        response = page(request, "login.html", status=429, error=error.detail)
        response.headers.update(error.headers())
        return response
    if not same_origin(request):
        return page(request, "login.html", status=403, error="The form came from another site")
    form = await read_form(request)
    await state.identity.events.poll_if_due(state.read_sessions, state.sessions)
    try:
        caller = await authenticate_key(state.identity, state.read_sessions, form.get("key", ""))
        require_admin(caller)
    except ServerKeyInvalid:
        limiter.hit(address)
        return page(request, "login.html", status=401, error="That is not a valid admin key")
    except AdminKeyRequired:
        limiter.hit(address)
        return page(request, "login.html", status=403, error="That key is not an admin key")
    limiter.reset(address)
    response = see_other("/admin")
    response.set_cookie(
        COOKIE,
        sessions.issue(caller.key_id),
        max_age=sessions.ttl,
        path="/admin",
        secure=is_https(request, state.settings),
        httponly=True,
        samesite="strict",
    )
    return response


@routes.post("/admin/logout")
async def logout(_form: FormDep) -> Response:
    response = see_other("/admin/login")
    response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="strict")
    return response


async def overview_data(state: AppState) -> dict[str, Any]:
    now = state.clock.now()
    async with state.read_sessions() as session:
        totals = await live_totals(session, state.clock)
        fleets = await fleet_service.list_fleets(session)
        waits = await queue_admin.searching_waits(session, state.clock)
        samples = await samples_since(session, now - CHART_WINDOW)
    fleet_states: Counter[str] = Counter()
    for fleet in fleets:
        fleet_states.update(fleet.counts)
    start = now - CHART_WINDOW
    return {
        "totals": totals,
        "fleet_states": dict(sorted(fleet_states.items())),
        "searching": sum(w.searching for w in waits.values()),
        "charts": [
            line_chart(
                "Players online",
                [(s.taken_at, s.players_online) for s in samples],
                start=start,
                end=now,
            ),
            line_chart("Servers", [(s.taken_at, s.servers) for s in samples], start=start, end=now),
        ],
    }


@routes.get("/admin")
async def overview(request: Request, state: StateDep, _admin: AdminSessionDep) -> HTMLResponse:
    return page(request, "overview.html", **await overview_data(state))


def install(app: FastAPI, state: AppState) -> None:
    app.state.dashboard = Sessions(state.settings, state.clock)
    for module_routes in (
        routes,
        routes_servers.routes,
        routes_players.routes,
        routes_game.routes,
        routes_game.unknown,  # last: it matches every path under /admin
    ):
        app.include_router(module_routes)
