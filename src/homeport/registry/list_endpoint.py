"""`GET /v1/servers`, served bare (see `homeport.bare`): every player who opens the server
browser, and every scroll, asks for a page. `POST /v1/servers` goes through FastAPI."""

from __future__ import annotations

import orjson
from starlette.types import Receive, Scope

from homeport.bare import BareEndpoint, authorization, parse_query
from homeport.identity.errors import TokenMissing
from homeport.identity.service_sessions import authenticate_player
from homeport.registry.listing import COLUMN_NAMES, ServerFilters, list_servers
from homeport.registry.views import page_dicts
from homeport.state import AppState

PATH = "/v1/servers"
_LISTS = frozenset({"tag"})


def matches(method: str, path: str) -> bool:
    return method == "GET" and path == PATH


class ListEndpoint(BareEndpoint):
    method = "GET"
    route = PATH

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.max_body_bytes = state.settings.http_max_body_bytes

    async def answer(self, scope: Scope, receive: Receive) -> bytes:
        state = self.state
        settings = state.settings
        token = authorization(scope["headers"], self.max_body_bytes)
        if settings.registry_list_requires_player:
            if token is None:
                raise TokenMissing()
            async with state.read_sessions() as session:
                await authenticate_player(session, state.identity, access_token=token)
        filters = parse_query(ServerFilters, scope["query_string"], _LISTS)
        rows, cursor = await list_servers(
            state.reader, state.clock, filters, max_page=settings.registry_page_size_max
        )
        return orjson.dumps({"servers": page_dicts(rows, COLUMN_NAMES), "next_cursor": cursor})
