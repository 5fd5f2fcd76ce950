"""`POST /v1/validate` as a bare ASGI endpoint.

Every player connect of every dedicated server lands here, so it skips FastAPI's dependency
solving and pydantic parsing (most of the cost of a request once the answer comes from memory)
and does the same checks by hand: key first, then the body's shape, then the token. Errors are
the same problem+json documents as everywhere else. `openapi_path()` documents it.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from homeport.deps import bearer_credentials
from homeport.errors import HomeportError, MethodNotAllowed, Unavailable, UnprocessableContent
from homeport.identity import errors as e
from homeport.identity.schemas import ValidateRequest, ValidateResponse
from homeport.identity.service_keys import authenticate_key, require_scope
from homeport.identity.service_validate import validate_player_token
from homeport.middleware import check_body_headers, read_body
from homeport.openapi import problems
from homeport.problems import DATABASE_UNAVAILABLE, problem_response
from homeport.state import AppState

PATH = "/v1/validate"
MAX_TOKEN_LENGTH = 4096
JSON_HEADERS = [(b"content-type", b"application/json")]
log = logging.getLogger("homeport.identity")


def _field_error(loc: list[str], msg: str, kind: str) -> UnprocessableContent:
    return UnprocessableContent(errors=[{"loc": loc, "msg": msg, "type": kind}])


def parse_body(body: bytes) -> str:
    """The player token from `{"player_token": "..."}`, or the same 422 FastAPI would give."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _field_error(["body"], "JSON decode error", "json_invalid") from exc
    if not isinstance(data, dict):
        raise _field_error(["body"], "Input should be an object", "model_type")
    extra = [k for k in data if k != "player_token"]
    if extra:
        raise _field_error(
            ["body", str(extra[0])[:64]], "Extra inputs are not permitted", "extra_forbidden"
        )
    token = data.get("player_token")
    if token is None:
        raise _field_error(["body", "player_token"], "Field required", "missing")
    if not isinstance(token, str):
        raise _field_error(["body", "player_token"], "Input should be a string", "string_type")
    if not 1 <= len(token) <= MAX_TOKEN_LENGTH:
        raise _field_error(
            ["body", "player_token"], f"Length must be 1 to {MAX_TOKEN_LENGTH}", "string_length"
        )
    return token


def _authorization(headers: list[tuple[bytes, bytes]], max_body_bytes: int) -> str | None:
    """The Bearer credentials, after the body rules every JSON endpoint applies."""
    check_body_headers(headers, max_body_bytes)
    for name, value in headers:
        if name == b"authorization":
            return bearer_credentials(value.decode("latin-1"))
    return None


class ValidateEndpoint:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.max_body_bytes = state.settings.http_max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            error = MethodNotAllowed(f"{scope['method']} is not allowed on {PATH}")
            await problem_response(error, PATH, {"Allow": "POST"})(scope, receive, send)
            return
        try:
            payload = await self._answer(scope, receive)
        except HomeportError as error:
            await problem_response(error, PATH)(scope, receive, send)
            return
        except DATABASE_UNAVAILABLE:
            log.warning("database error on POST %s", PATH, exc_info=True)
            busy = Unavailable("The database is busy or unreachable; retry shortly")
            await problem_response(busy, PATH, {"Retry-After": "1"})(scope, receive, send)
            return
        except Exception:
            log.exception("unhandled error on POST %s", PATH)
            await problem_response(HomeportError("An internal error occurred"), PATH)(
                scope, receive, send
            )
            return
        headers = [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _answer(self, scope: Scope, receive: Receive) -> bytes:
        state = self.state
        ident = state.identity
        await ident.events.poll_if_due(state.read_sessions, state.sessions)
        key = _authorization(scope["headers"], self.max_body_bytes)
        caller = await authenticate_key(ident, state.read_sessions, key)
        require_scope(caller, "validate")
        token = parse_body(await read_body(receive, self.max_body_bytes))
        result = await validate_player_token(state.read_sessions, ident, player_token=token)
        return orjson.dumps(result.body())


def openapi_path() -> dict[str, Any]:
    """The OpenAPI path item for the endpoint, as FastAPI would have written it."""
    responses: dict[str, Any] = {
        "200": {
            "description": "The token is valid: who the player is",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ValidateResponse"}}
            },
        }
    }
    declared = problems(
        e.ServerKeyInvalid,
        e.MissingScope,
        e.TokenInvalid,
        e.TokenWrongAudience,
        e.TokenExpired,
        e.SessionRevoked,
        e.PlayerBanned,
    )
    responses.update({str(status): item for status, item in declared.items()})
    return {
        "post": {
            "tags": ["identity"],
            "summary": "Validate",
            "description": "A dedicated server checks a player's access token and learns who "
            "the player is. Authenticate with a server key (scope `validate`) as Bearer. "
            "A body without Content-Type is read as JSON.",
            "operationId": "validate_v1_validate_post",
            "security": [{"ServerKey": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ValidateRequest"}}
                },
            },
            "responses": responses,
        }
    }


def openapi_schemas() -> dict[str, Any]:
    template = "#/components/schemas/{model}"
    response = ValidateResponse.model_json_schema(ref_template=template)
    nested: dict[str, Any] = response.pop("$defs", {})
    return {
        **nested,
        "ValidateRequest": ValidateRequest.model_json_schema(ref_template=template),
        "ValidateResponse": response,
    }
