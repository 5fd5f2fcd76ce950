"""HTTP routes of the registry: parse, call one service, shape the answer.

The heartbeat is served bare, in `registry.heartbeat_endpoint`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette import status

from homeport.bare import SERVED_BARE
from homeport.deps import (
    ClientAddressDep,
    PlayerDep,
    RegistryKeyDep,
    SessionDep,
    StateDep,
    get_player,
)
from homeport.identity import errors as identity_errors
from homeport.openapi import problems
from homeport.registry import errors as e
from homeport.registry import join_tickets, service
from homeport.registry.listing import ServerFilters
from homeport.registry.schemas import (
    JoinTicketOut,
    RegisteredOut,
    RegisterRequest,
    ServerOut,
    ServerPage,
)
from homeport.registry.views import owned_view, public_view

router = APIRouter(tags=["registry"])
KEY_ERRORS = (identity_errors.ServerKeyInvalid, identity_errors.MissingScope)
TOKEN_ERRORS = (
    identity_errors.TokenMissing,
    identity_errors.TokenInvalid,
    identity_errors.TokenExpired,
    identity_errors.SessionRevoked,
    identity_errors.PlayerBanned,
)


@router.post(
    "/v1/servers",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisteredOut,
    responses=problems(*KEY_ERRORS, e.RegistrationRaced),
)
async def register_server(
    body: RegisterRequest,
    caller: RegistryKeyDep,
    state: StateDep,
    session: SessionDep,
    address: ClientAddressDep,
) -> RegisteredOut:
    """A dedicated server announces itself (server key, scope `registry`). The same key
    registering the same address and port again replaces its old entry. Heartbeat every
    `heartbeat_interval` seconds to stay listed."""
    row = await service.register(
        session, state.clock, state.settings, caller, body, client_address=address
    )
    if row.require_join_ticket:
        state.registry.ticket_only_keys.put(caller.key_id, True)
    return RegisteredOut(
        server_id=row.id,
        heartbeat_interval=state.registry.lease.interval,
        expires_at=row.lease_expires_at,
        server=owned_view(row),
    )


async def _browser_access(request: Request, state: StateDep) -> None:
    if state.settings.registry_list_requires_player:
        await get_player(request, state)


@router.get(
    "/v1/servers",
    response_model=ServerPage,
    responses=problems(*TOKEN_ERRORS),
)
async def browse_servers(filters: Annotated[ServerFilters, Query()]) -> Response:
    """Live servers for the server browser, filtered and a page at a time. Public unless the
    `registry_list_requires_player` setting asks for a player's access token."""
    raise AssertionError(SERVED_BARE)  # served by `list_endpoint`


@router.get(
    "/v1/servers/{server_id}",
    response_model=ServerOut,
    responses=problems(e.ServerNotFound, *TOKEN_ERRORS),
)
async def get_server(server_id: uuid.UUID, state: StateDep, request: Request) -> ServerOut:
    """One live server, as the browser shows it."""
    await _browser_access(request, state)
    async with state.read_sessions() as session:
        row = await service.get_live(session, state.clock, server_id)
    return public_view(row)


@router.delete(
    "/v1/servers/{server_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*KEY_ERRORS, e.ServerNotFound, e.NotServerOwner),
)
async def deregister_server(
    server_id: uuid.UUID, caller: RegistryKeyDep, state: StateDep, session: SessionDep
) -> Response:
    """Remove a server from the list at once: the graceful shutdown path. Only the key that
    registered it (or an admin key) may."""
    await service.deregister(session, state.clock, caller, server_id)
    state.registry.ticket_only_keys.pop(caller.key_id)  # asked again on the next validate
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/servers/{server_id}/join-ticket",
    status_code=status.HTTP_201_CREATED,
    response_model=JoinTicketOut,
    responses=problems(*TOKEN_ERRORS, e.ServerNotFound, e.ServerNotJoinable),
)
async def issue_join_ticket(
    server_id: uuid.UUID, player: PlayerDep, state: StateDep, session: SessionDep
) -> JoinTicketOut:
    """A single-use, short-lived pass for the calling player to join this server. Give it to
    the server, which presents it to `POST /v1/validate` instead of the access token."""
    issued = await join_tickets.issue(
        session,
        state.clock,
        ttl_seconds=state.settings.registry_join_ticket_ttl,
        account_id=player.account.id,
        session_id=player.session_id,
        server_id=server_id,
    )
    return JoinTicketOut(
        ticket=issued.ticket,
        server_id=issued.server.id,
        expires_at=issued.expires_at,
        address=issued.server.address,
        port=issued.server.port,
    )
