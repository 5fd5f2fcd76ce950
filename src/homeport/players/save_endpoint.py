"""`PUT /v1/players/{player}/data/{collection}/{key}`, served bare (see `homeport.bare`): the
save every dedicated server makes at every level-up, disconnect and interval. The other
methods on the same path go through FastAPI (`players.routes`)."""

from __future__ import annotations

import re

import orjson
from starlette.types import Receive, Scope

from homeport.bare import Answer, BareEndpoint, authorization, parse_model
from homeport.errors import UnprocessableContent
from homeport.middleware import read_body
from homeport.observability.instruments import count_save
from homeport.players import access
from homeport.players.callers import data_caller
from homeport.players.documents import encoded_size
from homeport.players.errors import VersionRequired
from homeport.players.quota import charged
from homeport.players.saves import Save
from homeport.players.schemas import PutDocument
from homeport.state import AppState
from homeport.timefmt import rfc3339

_PATH = re.compile(
    r"/v1/players/([^/]{1,64})/data/([a-z0-9_][a-z0-9_.\-]{0,63})/([A-Za-z0-9_.:\-]{1,128})"
)


def matches(method: str, path: str) -> bool:
    """Only saves of well-formed paths come here; the rest, errors included, go to FastAPI."""
    return method == "PUT" and _PATH.fullmatch(path) is not None


def if_match(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"if-match":
            return value.decode("latin-1")
    return None


def requested_version(header: str | None, body_version: int | None) -> int | None:
    """The version a write names: `If-Match: "3"` (or 3, or W/"3"), or the body's."""
    if header is None:
        return body_version
    text = header.strip().removeprefix("W/").strip('"')
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        raise UnprocessableContent(
            errors=[{"loc": ["header", "if-match"], "msg": "Not a version", "type": "value_error"}]
        )
    version = int(text)
    if body_version is not None and body_version != version:
        raise UnprocessableContent(
            errors=[
                {
                    "loc": ["body", "version"],
                    "msg": "Disagrees with If-Match",
                    "type": "value_error",
                }
            ]
        )
    return version


class SaveEndpoint(BareEndpoint):
    method = "PUT"
    route = "/v1/players/{player}/data/{collection}/{key}"
    outcomes = staticmethod(count_save("document"))

    def __init__(self, state: AppState) -> None:
        self.state = state
        settings = state.settings
        self.max_body_bytes = max(settings.http_max_body_bytes, settings.players_request_max_bytes)

    async def answer(self, scope: Scope, receive: Receive) -> bytes | Answer:
        state = self.state
        settings = state.settings
        headers = scope["headers"]
        caller = await data_caller(state, authorization(headers, self.max_body_bytes))
        match = _PATH.fullmatch(scope["path"])
        assert match is not None
        player, collection, key = match.groups()
        player_id = access.resolve_player(caller, player)
        access.require_write(caller, settings, player_id, collection)
        body = parse_model(
            PutDocument,
            await read_body(receive, self.max_body_bytes, self.state.settings.http_body_timeout),
        )
        version = requested_version(if_match(headers), body.version)
        text, json_size = encoded_size(settings, body.value)  # a bad one is 422 whatever else
        if version is None and not access.rule_for(settings, collection).unversioned_writes:
            raise VersionRequired()
        size = charged(json_size, collection, key)
        save = Save(player_id, collection, key, body.value, text, size, version)
        written = await state.players.saves.submit(save)
        payload = orjson.dumps(
            {
                "player_id": str(player_id),
                "collection": collection,
                "key": key,
                "value": body.value,
                "version": written.version,
                "updated_at": rfc3339(written.updated_at),
            }
        )
        return payload, [(b"etag", f'"{written.version}"'.encode())]
