"""HTTP routes of matchmaking: tickets for players, matches for players and servers, queues.

Ticket reads long-poll (`?wait=`): the answer comes as soon as the ticket changes, told by the
event feed every process reads, so clients need not poll hard; `/v1/realtime` pushes the same.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette import status

from homeport.db.session import unit_of_work
from homeport.deps import AdminDep, PlayerDep, SessionDep, StateDep, bearer
from homeport.identity import errors as identity_errors
from homeport.identity.service_sessions import Authenticated
from homeport.matchmaking import errors as e
from homeport.matchmaking import matches, queue_admin, tickets
from homeport.matchmaking.models import Ticket
from homeport.matchmaking.queues import QUEUE_NAME, QueueSpec
from homeport.matchmaking.schemas import (
    MatchOut,
    MatchResult,
    QueueList,
    QueueOut,
    TicketCreate,
    TicketOut,
)
from homeport.openapi import problems
from homeport.players.callers import data_caller
from homeport.state import AppState

router = APIRouter(tags=["matchmaking"])
PLAYER_ERRORS = (
    identity_errors.TokenMissing,
    identity_errors.TokenInvalid,
    identity_errors.TokenExpired,
    identity_errors.SessionRevoked,
    identity_errors.PlayerBanned,
)
ANYONE_ERRORS = (*PLAYER_ERRORS, identity_errors.ServerKeyInvalid)
ADMIN_ERRORS = (identity_errors.ServerKeyInvalid, identity_errors.AdminKeyRequired)
QueuePath = Annotated[str, Path(pattern=QUEUE_NAME.pattern)]


@router.post(
    "/v1/matchmaking/tickets",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketOut,
    responses=problems(*PLAYER_ERRORS, e.QueueNotFound, e.AlreadySearching, e.PartyInvalid),
)
async def create_ticket(
    body: TicketCreate, state: StateDep, session: SessionDep, player: PlayerDep
) -> Any:
    """Ask to play (player token). A party leader names the other players; they are matched
    together, on one team, and each of them sees the ticket. A player has one active ticket
    at a time."""
    new = tickets.NewTicket(body.queue, list(body.party), body.properties, body.latencies)
    row = await tickets.create(session, state.clock, state.settings, player.account.id, new)
    return await _view(session, state, row, player)


async def _view(
    session: AsyncSession, state: AppState, row: Ticket, player: Authenticated
) -> dict[str, Any]:
    """The ticket as this player sees it (its connect token is made for this player)."""
    return await tickets.view(
        session,
        state.clock,
        state.settings,
        row,
        player=player.account.id,
        player_session=player.session_id,
    )


async def _read(state: AppState, ticket_id: uuid.UUID, player: Authenticated) -> dict[str, Any]:
    async with unit_of_work(state.sessions) as session:
        row = await tickets.get_own(session, ticket_id, player.account.id)
        return await _view(session, state, row, player)


@router.get(
    "/v1/matchmaking/tickets/{ticket_id}",
    response_model=TicketOut,
    responses=problems(*PLAYER_ERRORS, e.TicketNotFound),
)
async def get_ticket(
    ticket_id: uuid.UUID,
    state: StateDep,
    player: PlayerDep,
    wait: Annotated[float, Query(ge=0, le=120)] = 0,
) -> Any:
    """The ticket (its leader or a party member). With `wait`, the answer waits up to that many
    seconds (at most `matchmaking_wait_max`) for the ticket to leave `searching` or `matched`."""
    wait = min(wait, state.settings.matchmaking_wait_max)
    current = await _read(state, ticket_id, player)
    if wait <= 0 or current["state"] not in tickets.ACTIVE:
        return current
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    async with state.bus.subscribe(tickets.TOPIC) as feed:
        current = await _read(state, ticket_id, player)  # a change before we listened
        while current["state"] in tickets.ACTIVE and loop.time() < deadline:
            event = await feed.get(within=min(1.0, deadline - loop.time()))
            if event is None or event.subject == str(ticket_id):
                current = await _read(state, ticket_id, player)
    return current


@router.delete(
    "/v1/matchmaking/tickets/{ticket_id}",
    response_model=TicketOut,
    responses=problems(*PLAYER_ERRORS, e.TicketNotFound, e.TicketNotCancellable),
)
async def cancel_ticket(
    ticket_id: uuid.UUID, state: StateDep, session: SessionDep, player: PlayerDep
) -> Any:
    """Stop searching (any player of the ticket), until the ticket has a server."""
    row = await tickets.get_own(session, ticket_id, player.account.id, lock=True)
    await tickets.cancel(session, state.clock, row)
    return await _view(session, state, row, player)


@router.get("/v1/matchmaking/queues", response_model=QueueList, responses=problems(*ANYONE_ERRORS))
async def list_queues(request: Request, state: StateDep, session: SessionDep) -> QueueList:
    """The queues and how many tickets each has searching (a player token or any key)."""
    caller = await data_caller(state, bearer(request))
    admin = caller.key is not None and caller.key.is_admin
    return QueueList(
        queues=[
            QueueOut(
                name=q.name,
                teams=q.spec.teams,
                team_size=q.spec.team_size,
                searching=q.searching,
                spec=q.spec if admin else None,
            )
            for q in await queue_admin.list_queues(session)
        ]
    )


@router.put(
    "/v1/admin/matchmaking/queues/{queue}",
    response_model=QueueOut,
    responses={201: {"description": "Created", "model": QueueOut}, **problems(*ADMIN_ERRORS)},
)
async def put_queue(
    queue: QueuePath,
    body: QueueSpec,
    state: StateDep,
    session: SessionDep,
    _admin: AdminDep,
    response: Response,
) -> QueueOut:
    """Define or replace a queue (admin key); 201 when new. Tickets already searching keep
    their skill; the next pass applies the new rules."""
    view, created = await queue_admin.put_queue(session, state.clock, queue, body)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return QueueOut(
        name=view.name,
        teams=body.teams,
        team_size=body.team_size,
        searching=view.searching,
        spec=body,
    )


@router.delete(
    "/v1/admin/matchmaking/queues/{queue}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*ADMIN_ERRORS, e.QueueNotFound),
)
async def delete_queue(
    queue: QueuePath, state: StateDep, session: SessionDep, _admin: AdminDep
) -> Response:
    """Delete a queue (admin key); its active tickets end as cancelled."""
    await queue_admin.delete_queue(session, state.clock, queue)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/v1/matches/{match_id}",
    response_model=MatchOut,
    responses=problems(*ANYONE_ERRORS, e.MatchNotFound),
)
async def get_match(
    match_id: uuid.UUID, request: Request, state: StateDep, session: SessionDep
) -> Any:
    """A match: for its players (token), its server (its own key), admin keys and keys with
    the `matchmaking` scope."""
    caller = await data_caller(state, bearer(request))
    row = await matches.visible(session, match_id, caller)
    return matches.out(row)


@router.post(
    "/v1/matches/{match_id}/result",
    response_model=MatchOut,
    responses=problems(
        identity_errors.ServerKeyInvalid,
        e.MatchNotFound,
        e.NotMatchServer,
        e.ResultAlreadyRecorded,
        e.MatchNotPlayable,
    ),
    openapi_extra={"security": [{"ServerKey": ["matchmaking"]}]},
)
async def record_result(
    match_id: uuid.UUID, body: MatchResult, request: Request, state: StateDep, session: SessionDep
) -> Any:
    """Record how the match ended (its server's own key, an admin key or scope `matchmaking`):
    each team's place. Every player's rating in the queue's pool moves by Elo."""
    caller = await data_caller(state, bearer(request))
    row = await matches.record_result(
        session, state.clock, state.settings, match_id, caller, body.ranks
    )
    return matches.out(row)
