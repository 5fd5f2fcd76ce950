"""`POST /v1/validate`: who is this connecting player? Served bare (see `homeport.bare`).

Every player connect of every dedicated server lands here. An access token is answered from
memory where that is safe (see `identity.service_validate`); a join ticket is a single-use
write, so it takes the write path.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.types import Receive, Scope

from homeport.bare import SERVED_BARE, BareEndpoint, authorization, parse_model
from homeport.db.session import unit_of_work
from homeport.identity import errors as e
from homeport.identity.schemas import ValidateRequest, ValidateResponse
from homeport.identity.service_keys import authenticate_key, require_scope
from homeport.identity.service_validate import validate_player_token
from homeport.middleware import read_body
from homeport.observability.instruments import count_validation
from homeport.openapi import problems
from homeport.registry import errors as registry_errors
from homeport.registry import join_tickets
from homeport.state import AppState
from homeport.timefmt import rfc3339

PATH = "/v1/validate"


class ValidateEndpoint(BareEndpoint):
    route = PATH
    outcomes = staticmethod(count_validation)

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.max_body_bytes = state.settings.http_max_body_bytes

    async def answer(self, scope: Scope, receive: Receive) -> bytes:
        state = self.state
        ident = state.identity
        await ident.events.poll_if_due(state.read_sessions, state.sessions)
        key = authorization(scope["headers"], self.max_body_bytes)
        caller = await authenticate_key(ident, state.read_sessions, key)
        require_scope(caller, "validate")
        body = parse_model(
            ValidateRequest,
            await read_body(receive, self.max_body_bytes, self.state.settings.http_body_timeout),
        )
        if join_tickets.is_ticket(body.player_token):
            async with unit_of_work(state.sessions) as session:
                admitted = await join_tickets.redeem(
                    session,
                    state.clock,
                    caller,
                    ticket=body.player_token,
                    server_id=body.server_id,
                )
            return orjson.dumps(
                {
                    "player": admitted.player,
                    "session": {
                        "id": str(admitted.session_id),
                        "expires_at": rfc3339(admitted.session_expires_at),
                    },
                    "data": await self._spawn_data(admitted.account_id),
                    "server_id": str(admitted.server_id),
                }
            )
        if body.server_id is not None:
            await state.registry.admit_plain_token(state.read_sessions, caller, body.server_id)
        else:
            await state.registry.admit_unnamed_plain_token(state.read_sessions, caller)
        result = await validate_player_token(
            state.read_sessions, ident, player_token=body.player_token
        )
        answer = result.body()
        answer["data"] = await self._spawn_data(result.claims.player_id)
        return orjson.dumps(answer)

    async def _spawn_data(self, account_id: uuid.UUID) -> dict[str, Any]:
        """The player's documents a server needs to spawn them (settings decide which)."""
        return await self.state.players.spawns.data(account_id)


declarations = APIRouter()


@declarations.post(
    PATH,
    tags=["trust"],
    response_model=ValidateResponse,
    responses=problems(
        e.ServerKeyInvalid,
        e.MissingScope,
        e.TokenInvalid,
        e.TokenWrongAudience,
        e.TokenExpired,
        e.SessionRevoked,
        e.PlayerBanned,
        registry_errors.JoinTicketInvalid,
        registry_errors.JoinTicketRequired,
        registry_errors.ServerNotFound,
    ),
    openapi_extra={"security": [{"ServerKey": ["validate"]}]},
)
async def validate(body: ValidateRequest) -> Any:
    """A dedicated server checks a player's access token or join ticket and learns who the
    player is. Authenticate with a server key (scope `validate`) as Bearer. A body without
    Content-Type is read as JSON."""
    raise AssertionError(SERVED_BARE)
