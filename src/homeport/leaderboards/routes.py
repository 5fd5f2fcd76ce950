"""HTTP routes of the leaderboards: parse, call the service or a query, shape the answer.

Reads take a player's access token or a server key with the `leaderboards` scope; creating and
deleting boards takes an admin key. Submissions are served by `submit_endpoint`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field, StringConstraints
from starlette import status
from starlette.routing import Route

from homeport.bare import SERVED_BARE
from homeport.deps import AdminDep, SessionDep, StateDep, bearer
from homeport.errors import UnprocessableContent
from homeport.identity import errors as identity_errors
from homeport.leaderboards import access, queries, rank_endpoint, service
from homeport.leaderboards import errors as e
from homeport.leaderboards.boards import BoardRule
from homeport.leaderboards.periods import Period
from homeport.leaderboards.schemas import (
    BOARD_ID_PATTERN,
    MAX_PAGE,
    MAX_PLAYERS,
    BoardCreate,
    BoardList,
    BoardOut,
    PeriodList,
    PeriodOut,
    RecordOut,
    RecordPage,
    RecordSubmit,
    Strict,
    SubmittedOut,
)
from homeport.leaderboards.submit_endpoint import PATH, SubmitEndpoint
from homeport.openapi import problems
from homeport.state import AppState

router = APIRouter(tags=["leaderboards"])
# The hot endpoints come first: Starlette takes the first route that matches, so FastAPI's
# declarations of the same paths below only document them.
router.routes.append(Route(PATH, SubmitEndpoint(), methods=["POST"]))
router.routes.append(Route(rank_endpoint.PATH, rank_endpoint.RankEndpoint(), methods=["GET"]))

KEY_ERRORS = (identity_errors.ServerKeyInvalid, identity_errors.MissingScope)
ADMIN_ERRORS = (identity_errors.ServerKeyInvalid, identity_errors.AdminKeyRequired)
READ_ERRORS = (
    identity_errors.TokenMissing,
    identity_errors.TokenInvalid,
    identity_errors.TokenExpired,
    identity_errors.SessionRevoked,
    identity_errors.PlayerBanned,
    *KEY_ERRORS,
)
KEY_PREFIXES = ("hp_sk_", "hp_admin_")
BoardIdPath = Annotated[str, Path(pattern=BOARD_ID_PATTERN)]
PeriodName = Annotated[str, StringConstraints(max_length=32)]


async def _reader(request: Request, state: StateDep) -> None:
    await access.check_reader(state, bearer(request))


ReaderDep = Depends(_reader)


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _period_out(period: Period, current: bool) -> PeriodOut:
    return PeriodOut(
        period=period.key, starts_at=period.starts_at, ends_at=period.ends_at, current=current
    )


def _board_out(rule: BoardRule, state: AppState) -> BoardOut:
    return BoardOut(
        id=rule.id,
        order=rule.order,
        operator=rule.operator,
        reset=rule.reset,
        cron=rule.cron,
        created_at=rule.created_at,
        current_period=_period_out(rule.period_at(state.clock.now()), True),
    )


@router.post(
    "/v1/admin/leaderboards",
    status_code=status.HTTP_201_CREATED,
    response_model=BoardOut,
    responses=problems(*ADMIN_ERRORS, e.LeaderboardExists),
)
async def create_leaderboard(
    body: BoardCreate, state: StateDep, session: SessionDep, _admin: AdminDep
) -> BoardOut:
    """Create a board (admin key). `order` desc ranks high scores first; `operator` says how a
    submission meets the stored record; `reset` starts a new period daily, weekly (Monday),
    monthly or by a `cron` schedule, all in UTC, and keeps the old periods readable."""
    row = await service.create_board(session, state.clock, body)
    return _board_out(BoardRule.of(row), state)


@router.delete(
    "/v1/admin/leaderboards/{board_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*ADMIN_ERRORS, e.LeaderboardNotFound),
)
async def delete_leaderboard(
    board_id: BoardIdPath, state: StateDep, session: SessionDep, _admin: AdminDep
) -> Response:
    """Delete a board and every record of every period it had (admin key)."""
    await service.delete_board(session, board_id)
    state.leaderboards.forget(board_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/v1/leaderboards",
    response_model=BoardList,
    responses=problems(*READ_ERRORS),
    dependencies=[ReaderDep],
)
async def list_leaderboards(state: StateDep) -> BoardList:
    """Every board, by id."""
    async with state.read_sessions() as session:
        rows = await service.list_boards(session)
    return BoardList(leaderboards=[_board_out(BoardRule.of(row), state) for row in rows])


@router.get(
    "/v1/leaderboards/{board_id}",
    response_model=BoardOut,
    responses=problems(*READ_ERRORS, e.LeaderboardNotFound),
    dependencies=[ReaderDep],
)
async def get_leaderboard(board_id: BoardIdPath, state: StateDep) -> BoardOut:
    """One board's rules and its current period."""
    return _board_out(await state.leaderboards.rule(state.read_sessions, board_id), state)


@router.get(
    "/v1/leaderboards/{board_id}/periods",
    response_model=PeriodList,
    responses=problems(*READ_ERRORS, e.LeaderboardNotFound),
    dependencies=[ReaderDep],
)
async def list_periods(board_id: BoardIdPath, state: StateDep) -> PeriodList:
    """The board's periods, newest first (at most 500): past seasons stay readable by passing
    their `period` to the record endpoints."""
    rule = await state.leaderboards.rule(state.read_sessions, board_id)
    current = rule.period_at(state.clock.now())
    async with state.read_sessions() as session:
        periods = await service.list_periods(session, rule, current)
    return PeriodList(board_id=rule.id, periods=[_period_out(p, c) for p, c in periods])


class RecordQuery(Strict):
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 10
    """Records per page (top and `around`)."""
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None
    """From a previous page's `next_cursor`."""
    around: uuid.UUID | None = None
    """A player id: `limit` records with this player's among them, centred where possible."""
    player_id: Annotated[list[uuid.UUID], Field(max_length=MAX_PLAYERS)] = []
    """Repeated: only these players' records (a friends list), best first."""
    period: PeriodName | None = None
    """A period from `/periods`; the current one by default."""


def _one_mode(query: RecordQuery) -> None:
    used = [name for name in ("cursor", "around", "player_id") if getattr(query, name)]
    if len(used) > 1:
        msg = f"{' and '.join(used)} cannot be combined"
        raise UnprocessableContent(
            errors=[{"loc": ["query", used[1]], "msg": msg, "type": "value_error"}]
        )


@router.get(
    "/v1/leaderboards/{board_id}/records",
    response_model=RecordPage,
    responses=problems(*READ_ERRORS, e.LeaderboardNotFound, e.PeriodNotFound, e.RecordNotFound),
    dependencies=[ReaderDep],
)
async def read_records(
    board_id: BoardIdPath, query: Annotated[RecordQuery, Query()], state: StateDep
) -> Response:
    """Records with their ranks: a page from the top (follow `next_cursor`), or with `around`
    the records around one player, or with `player_id` (repeated, up to 100) those players'
    records. Ties rank by score, then subscore, then who reached it first, then player id."""
    _one_mode(query)
    rule, period = await access.where(state, board_id, query.period)
    reader, standings = state.reader, state.leaderboards.standings
    page: dict[str, Any] = {"board_id": rule.id, "period": period, "next_cursor": None}
    if query.around is not None:
        index = await standings.index(rule.id, period)
        page["records"] = await queries.around(
            reader, index, rule.id, period, query.around, limit=query.limit
        )
    elif query.player_id:
        index = await standings.index(rule.id, period)
        page["records"] = await queries.of_players(reader, index, rule.id, period, query.player_id)
    else:
        page["records"], page["next_cursor"] = await queries.top(
            reader, rule.id, period, limit=query.limit, cursor=query.cursor
        )
    return _json(page)


@router.get(
    rank_endpoint.PATH,
    response_model=RecordOut,
    responses=problems(*READ_ERRORS, e.LeaderboardNotFound, e.PeriodNotFound, e.RecordNotFound),
)
async def read_player_record(
    board_id: BoardIdPath,
    player_id: uuid.UUID,
    period: Annotated[PeriodName | None, Query()] = None,
) -> Any:
    """One player's record and rank in a period (the current one by default)."""
    raise AssertionError(SERVED_BARE)


@router.post(
    PATH,
    response_model=SubmittedOut,
    responses=problems(
        *KEY_ERRORS,
        e.LeaderboardNotFound,
        identity_errors.PlayerNotFound,
        e.ScoreOutOfRange,
    ),
    openapi_extra={"security": [{"ServerKey": ["leaderboards"]}]},
)
async def submit_record(board_id: BoardIdPath, body: RecordSubmit) -> Any:
    """A dedicated server submits a player's result (server key with scope `leaderboards`).
    The board's operator decides what is stored: `best` keeps the better record, `latest`
    replaces it, `increment` adds to it. The answer is the record as stored, once committed;
    `changed` is false when the record stayed as it was."""
    raise AssertionError(SERVED_BARE)
