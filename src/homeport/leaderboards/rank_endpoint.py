"""`GET /v1/leaderboards/{board_id}/records/{player_id}`: one player's record and rank.

Every results screen asks for it, so like submissions it is a plain ASGI app mounted as a
Starlette route (see `submit_endpoint`): the caller is checked from caches, the record is one
raw query, and the rank comes from the process's rank index.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope

from homeport.bare import BareEndpoint, authorization
from homeport.errors import UnprocessableContent
from homeport.leaderboards import access
from homeport.leaderboards.errors import RecordNotFound
from homeport.leaderboards.schemas import BOARD_ID_PATTERN
from homeport.state import AppState

PATH = "/v1/leaderboards/{board_id}/records/{player_id}"
_BOARD_ID = re.compile(BOARD_ID_PATTERN)
MAX_PERIOD = 32


def _invalid(where: list[str], msg: str) -> UnprocessableContent:
    return UnprocessableContent(errors=[{"loc": where, "msg": msg, "type": "value_error"}])


def _period(query_string: bytes) -> str | None:
    period: str | None = None
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name != "period":
            raise _invalid(["query", name[:64]], "Unknown parameter")
        if not 0 < len(value) <= MAX_PERIOD:
            raise _invalid(["query", "period"], f"Must have 1 to {MAX_PERIOD} characters")
        period = value
    return period


PREFIX = "/v1/leaderboards/"


def matches(path: str) -> bool:
    """Whether `path` is this endpoint's, for serving it from `HomeportApp.bare_patterns`."""
    parts = path.split("/")
    return path.startswith(PREFIX) and len(parts) == 6 and parts[4] == "records"


def _path_params(scope: Scope) -> dict[str, str]:
    params = scope.get("path_params")
    if params:
        return {name: str(value) for name, value in params.items()}
    parts = scope["path"].split("/")
    return {"board_id": parts[3], "player_id": parts[5]}


class RankEndpoint(BareEndpoint):
    """Mounted like `submit_endpoint.SubmitEndpoint`, and like it servable bare."""

    method = "GET"
    route = PATH

    def __init__(self, state: AppState | None = None) -> None:
        self.state = state

    async def answer(self, scope: Scope, receive: Receive) -> bytes:
        state: AppState = self.state or scope["app"].state.homeport
        credentials = authorization(scope["headers"], state.settings.http_max_body_bytes)
        await access.check_reader(state, credentials)
        params = _path_params(scope)
        board_id = params.get("board_id", "")
        if not _BOARD_ID.match(board_id):
            raise _invalid(["path", "board_id"], "Not a board id")
        try:
            player_id = uuid.UUID(params.get("player_id", ""))
        except ValueError as exc:
            raise _invalid(["path", "player_id"], "Not a UUID") from exc
        rule, period = await access.where(state, board_id, _period(scope["query_string"]))
        leaderboards = state.leaderboards
        index = await leaderboards.standings.index(rule.id, period)
        row = await leaderboards.lookups.player(rule.id, period, player_id)
        if row is None:
            raise RecordNotFound()
        return row.render(index.rank(player_id, row.key))
