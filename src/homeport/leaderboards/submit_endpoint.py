"""`POST /v1/leaderboards/{board_id}/records`: a dedicated server submits a record.

The hottest leaderboard path, so it is a plain ASGI app (see `homeport.bare`) mounted as a
Starlette route: no dependency solving, one pydantic parse, the answer rendered straight to
JSON. Its OpenAPI description is a declaration in `routes` that is never served.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import orjson
from starlette.types import Receive, Scope

from homeport.bare import BareEndpoint, authorization, parse_model
from homeport.errors import UnprocessableContent
from homeport.identity.service_keys import authenticate_key, require_scope
from homeport.leaderboards.schemas import BOARD_ID_PATTERN, RecordSubmit
from homeport.leaderboards.submissions import EPOCH, Result, Submission
from homeport.middleware import read_body
from homeport.state import AppState
from homeport.timefmt import rfc3339
from homeport.validators import encoded_json

PATH = "/v1/leaderboards/{board_id}/records"
SCOPE = "leaderboards"
_BOARD_ID = re.compile(BOARD_ID_PATTERN)


def render_result(result: Result) -> bytes:
    record = result.record
    body: dict[str, Any] = {
        "board_id": result.board_id,
        "period": result.period,
        "player_id": str(result.player_id),
        "score": record.score,
        "subscore": record.subscore,
        "metadata": orjson.Fragment(record.metadata),
        "reached_at": rfc3339(EPOCH + timedelta(microseconds=record.reached_us)),
        "updated_at": rfc3339(record.updated_at),
        "changed": result.changed,
    }
    return orjson.dumps(body)


PREFIX = "/v1/leaderboards/"
SUFFIX = "/records"


def matches(path: str) -> bool:
    """Whether `path` is this endpoint's, for serving it from `HomeportApp.bare_patterns`."""
    return path.startswith(PREFIX) and path.endswith(SUFFIX) and path.count("/") == 4


def path_board_id(scope: Scope) -> str:
    """The board id from the route's parameters, or from the path when served bare."""
    params = scope.get("path_params")
    if params:
        return str(params.get("board_id", ""))
    return str(scope["path"][len(PREFIX) : -len(SUFFIX)])


class SubmitEndpoint(BareEndpoint):
    """Mounted as a Starlette route by `routes`; `HomeportApp.bare_patterns` can serve it
    ahead of the router too (pass the state: bare requests carry no app in their scope)."""

    method = "POST"
    route = PATH

    def __init__(self, state: AppState | None = None) -> None:
        self.state = state

    async def answer(self, scope: Scope, receive: Receive) -> bytes:
        state: AppState = self.state or scope["app"].state.homeport
        max_body = state.settings.http_max_body_bytes
        ident = state.identity
        await ident.events.poll_if_due(state.read_sessions, state.sessions)
        key = authorization(scope["headers"], max_body)
        caller = await authenticate_key(ident, state.read_sessions, key)
        require_scope(caller, SCOPE)
        board_id = path_board_id(scope)
        if not _BOARD_ID.match(board_id):
            error = {"loc": ["path", "board_id"], "msg": "Not a board id", "type": "value_error"}
            raise UnprocessableContent(errors=[error])
        body = parse_model(
            RecordSubmit, await read_body(receive, max_body, state.settings.http_body_timeout)
        )
        submission = Submission(
            board_id,
            body.player_id,
            body.score,
            body.subscore,
            encoded_json(body.metadata).decode(),
        )
        result = await state.leaderboards.writer.submit(submission)
        return render_result(result)
