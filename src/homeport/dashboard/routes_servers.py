"""Servers (the live registry, filtered like the public browser) and fleets (scale, drain)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from homeport.dashboard.deps import AdminSessionDep, FormDep, router
from homeport.dashboard.render import page, see_other
from homeport.db.session import unit_of_work
from homeport.deps import StateDep
from homeport.errors import UnprocessableContent
from homeport.fleet import service as fleet_service
from homeport.fleet.errors import GameServerNotFound
from homeport.fleet.spec import ENDED_STATES, GameServerState
from homeport.identity.service_accounts import display_names
from homeport.registry import service as registry_service
from homeport.registry.listing import ServerFilters, list_servers
from homeport.registry.schemas import ServerState
from homeport.state import AppState

routes = router()
FILTERS = ("map", "mode", "region", "state", "q", "cursor")
PAGE_SIZE = 50
REPLICAS_MAX = 1000


async def _listing(request: Request, state: AppState) -> dict[str, Any]:
    """The filters as the form sent them (empty fields mean "any") and one page of servers."""
    wanted = {k: v for k, v in request.query_params.items() if k in FILTERS and v.strip()}
    filters = ServerFilters.model_validate({**wanted, "limit": PAGE_SIZE})
    rows, cursor = await list_servers(
        state.reader, state.clock, filters, max_page=state.settings.registry_page_size_max
    )
    now = state.clock.now()
    servers = [(row, (now - row.heartbeat_at).total_seconds()) for row in rows]
    return {
        "filters": {k: wanted.get(k, "") for k in FILTERS},
        "states": [s.value for s in ServerState],
        "servers": servers,
        "next_cursor": cursor,
    }


@routes.get("/admin/servers")
async def servers(request: Request, state: StateDep, _admin: AdminSessionDep) -> HTMLResponse:
    return page(request, "servers.html", **await _listing(request, state))


@routes.get("/admin/servers/rows")
async def server_rows(request: Request, state: StateDep, _admin: AdminSessionDep) -> HTMLResponse:
    """The table's rows alone: what the servers page fetches every few seconds."""
    return page(request, "_server_rows.html", **await _listing(request, state))


@routes.get("/admin/servers/{server_id}")
async def server(
    server_id: uuid.UUID, request: Request, state: StateDep, _admin: AdminSessionDep
) -> HTMLResponse:
    async with state.read_sessions() as session:
        row = await registry_service.get_live(session, state.clock, server_id)
        ids = []
        for text in row.player_ids or []:
            try:
                ids.append(uuid.UUID(str(text)))
            except ValueError:
                continue
        names = await display_names(session, ids)
        try:
            fleet_server = await fleet_service.get_server(session, None, server_id)
        except GameServerNotFound:
            fleet_server = None
    age = (state.clock.now() - row.heartbeat_at).total_seconds()
    players = [(player_id, names.get(player_id)) for player_id in ids]
    return page(
        request,
        "server.html",
        server=row,
        heartbeat_age=age,
        players=players,
        fleet_server=fleet_server,
        drainable=_drainable(fleet_server.state) if fleet_server else False,
    )


def _drainable(state: str) -> bool:
    return GameServerState(state) not in ENDED_STATES and state != GameServerState.DRAINING


@routes.get("/admin/fleets")
async def fleets(request: Request, state: StateDep, _admin: AdminSessionDep) -> HTMLResponse:
    async with state.read_sessions() as session:
        views = await fleet_service.list_fleets(session)
        listed = [(view, await fleet_service.list_servers(session, view.name)) for view in views]
    return page(request, "fleets.html", fleets=listed, drainable=_drainable)


@routes.post("/admin/fleets/{fleet}/scale")
async def scale(fleet: str, form: FormDep, state: StateDep) -> Response:
    """A fixed number of servers, or (empty) back to the fleet's buffer policy."""
    text = form.get("replicas", "").strip()
    replicas: int | None = None
    if text:
        if not text.isdigit() or int(text) > REPLICAS_MAX:
            raise UnprocessableContent(f"replicas: a whole number from 0 to {REPLICAS_MAX}")
        replicas = int(text)
    async with unit_of_work(state.sessions) as session:
        await fleet_service.scale(session, state.clock, fleet, replicas)
    return see_other("/admin/fleets")


@routes.post("/admin/fleets/{fleet}/servers/{server_id}/drain")
async def drain(
    fleet: str, server_id: uuid.UUID, form: FormDep, state: StateDep, admin: AdminSessionDep
) -> Response:
    async with unit_of_work(state.sessions) as session:
        row = await fleet_service.get_server(session, fleet, server_id)
        reason = f"drained from the dashboard by {admin.key_name}"
        await fleet_service.request_drain(session, state.clock, row, reason=reason)
    back = "/admin/fleets" if form.get("back") != "server" else f"/admin/servers/{server_id}"
    return see_other(back)
