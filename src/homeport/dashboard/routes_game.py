"""Matchmaking queues, leaderboards and worlds: read-only views for operators."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from homeport.dashboard.auth import AdminSession
from homeport.dashboard.deps import AdminSessionDep, router
from homeport.dashboard.render import page
from homeport.deps import StateDep
from homeport.errors import NotFound
from homeport.leaderboards import access, queries
from homeport.leaderboards import service as boards
from homeport.leaderboards.boards import BoardRule
from homeport.leaderboards.errors import LeaderboardNotFound
from homeport.matchmaking import queue_admin
from homeport.worlds import service as worlds
from homeport.worlds import snapshots
from homeport.worlds.access import WORLD_NAME, Writer
from homeport.worlds.errors import WorldNotFound

routes = router()
TOP_RECORDS = 50
WORLDS_SHOWN = 200
SNAPSHOTS_SHOWN = 100
BOARD_ID_MAX = 64


@routes.get("/admin/matchmaking")
async def matchmaking(request: Request, state: StateDep, _admin: AdminSessionDep) -> HTMLResponse:
    async with state.read_sessions() as session:
        queues = await queue_admin.list_queues(session)
        waits = await queue_admin.searching_waits(session, state.clock)
    return page(request, "matchmaking.html", queues=queues, waits=waits)


@routes.get("/admin/leaderboards")
async def leaderboards(request: Request, state: StateDep, _admin: AdminSessionDep) -> HTMLResponse:
    async with state.read_sessions() as session:
        rows = await boards.list_boards(session)
    now = state.clock.now()
    listed = [(rule, rule.period_at(now).key) for rule in map(BoardRule.of, rows)]
    return page(request, "leaderboards.html", boards=listed)


@routes.get("/admin/leaderboards/{board_id}")
async def leaderboard(
    board_id: str, request: Request, state: StateDep, _admin: AdminSessionDep
) -> HTMLResponse:
    if len(board_id) > BOARD_ID_MAX or not board_id.isprintable():
        raise LeaderboardNotFound()
    rule, period = await access.where(state, board_id, None)
    records, _ = await queries.top(state.reader, rule.id, period, limit=TOP_RECORDS, cursor=None)
    return page(request, "leaderboard.html", board=rule, period=period, records=records)


@routes.get("/admin/worlds")
async def world_list(request: Request, state: StateDep, _admin: AdminSessionDep) -> HTMLResponse:
    async with state.read_sessions() as session:
        rows = await worlds.list_worlds(session, None, WORLDS_SHOWN)
        views = [await worlds.view(session, row) for row in rows]
    return page(request, "worlds.html", worlds=views)


def _writer(admin: AdminSession) -> Writer:
    return Writer(key_id=admin.key_id, server_id=None, is_admin=True, fleet=None)


@routes.get("/admin/worlds/{name}")
async def world(
    name: str, request: Request, state: StateDep, admin: AdminSessionDep
) -> HTMLResponse:
    if not WORLD_NAME.fullmatch(name):
        raise WorldNotFound()
    writer = _writer(admin)
    async with state.read_sessions() as session:
        row = await worlds.open_for_read(session, name, writer)
        shown = await worlds.view(session, row)
    history = await snapshots.history(state.worlds, name, writer, None, SNAPSHOTS_SHOWN)
    return page(request, "world.html", world=shown, snapshots=history)


unknown = router()


@unknown.get("/admin/{rest:path}")
async def no_such_page(rest: str) -> HTMLResponse:
    """Any other address under /admin: a page that says so, not the API's problem+json."""
    raise NotFound(f"The dashboard has no page /admin/{rest[:100]}")
