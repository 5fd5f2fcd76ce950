"""`PUT /v1/servers/{id}/heartbeat`, served bare (see `homeport.bare`): every live server calls it
every interval, so it is the registry's hottest path."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.types import Receive, Scope

from homeport.bare import SERVED_BARE, BareEndpoint, authorization, parse_model
from homeport.errors import UnprocessableContent
from homeport.identity import errors as identity_errors
from homeport.identity.service_keys import authenticate_key, require_scope
from homeport.middleware import read_body
from homeport.observability.instruments import count_heartbeat
from homeport.openapi import problems
from homeport.registry import errors as e
from homeport.registry.schemas import HeartbeatRequest, HeartbeatResponse
from homeport.state import AppState
from homeport.timefmt import rfc3339

PREFIX = "/v1/servers/"
SUFFIX = "/heartbeat"


def matches(path: str) -> bool:
    return path.startswith(PREFIX) and path.endswith(SUFFIX) and path.count("/") == 4


def _server_id(path: str) -> uuid.UUID:
    text = path[len(PREFIX) : -len(SUFFIX)]
    try:
        return uuid.UUID(text)
    except ValueError as exc:
        raise UnprocessableContent(
            errors=[{"loc": ["path", "server_id"], "msg": "Not a UUID", "type": "uuid_parsing"}]
        ) from exc


class HeartbeatEndpoint(BareEndpoint):
    method = "PUT"
    route = "/v1/servers/{server_id}/heartbeat"
    outcomes = staticmethod(count_heartbeat)

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.max_body_bytes = state.settings.http_max_body_bytes
        self.interval = state.registry.lease.interval

    async def answer(self, scope: Scope, receive: Receive) -> bytes:
        state = self.state
        ident = state.identity
        await ident.events.poll_if_due(state.read_sessions, state.sessions)
        key = authorization(scope["headers"], self.max_body_bytes)
        caller = await authenticate_key(ident, state.read_sessions, key)
        require_scope(caller, "registry")
        server_id = _server_id(scope["path"])
        body = parse_model(
            HeartbeatRequest,
            await read_body(receive, self.max_body_bytes, self.state.settings.http_body_timeout),
        )
        renewed = await state.registry.heartbeats.beat(caller, server_id, body)
        directive = renewed.directive or {}
        return orjson.dumps(
            {
                "server_id": str(server_id),
                "expires_at": rfc3339(renewed.expires_at),
                "heartbeat_interval": self.interval,
                "action": directive.get("action"),
                "allocation": directive.get("allocation"),
            }
        )


declarations = APIRouter()


@declarations.put(
    "/v1/servers/{server_id}/heartbeat",
    tags=["registry"],
    response_model=HeartbeatResponse,
    responses=problems(
        identity_errors.ServerKeyInvalid,
        identity_errors.MissingScope,
        e.ServerNotRegistered,
        e.NotServerOwner,
    ),
    openapi_extra={"security": [{"ServerKey": ["registry"]}]},
)
async def heartbeat(server_id: uuid.UUID, body: HeartbeatRequest | None = None) -> Any:
    """Keep a registered server in the list for another lease, and update what changed. Every
    field is optional; an empty body only renews the lease. A `server-not-registered` problem
    (unknown id, or the lease ran out) means: register again. Server key with scope `registry`;
    only the key that registered the server (or an admin key) may heartbeat it."""
    raise AssertionError(SERVED_BARE)
