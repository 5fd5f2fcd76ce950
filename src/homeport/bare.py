"""Hot endpoints served as plain ASGI apps, ahead of FastAPI's routing and dependency solving.

They keep every rule the rest of the API follows (body limits, problem+json errors, 503 on a
database outage) and skip only the per-request framework machinery, which is most of the cost
of a request whose answer is cheap. Each one's OpenAPI description comes from a declaration
that FastAPI documents but never serves (see `app._document_bare_endpoints`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.types import Receive, Scope, Send

from homeport.deps import bearer_credentials
from homeport.errors import HomeportError, MethodNotAllowed, Unavailable, UnprocessableContent
from homeport.middleware import check_body_headers
from homeport.observability.instruments import OK, UNEXPECTED
from homeport.problems import database_unavailable, problem_response

log = logging.getLogger("homeport.http")
JSON_HEADERS = [(b"content-type", b"application/json")]
M = TypeVar("M", bound=BaseModel)
Answer = tuple[bytes, list[tuple[bytes, bytes]]]


def authorization(headers: list[tuple[bytes, bytes]], max_body_bytes: int) -> str | None:
    """The Bearer credentials, after the body rules every JSON endpoint applies."""
    check_body_headers(headers, max_body_bytes)
    for name, value in headers:
        if name == b"authorization":
            return bearer_credentials(value.decode("latin-1"))
    return None


def _refusal(exc: ValidationError, where: str) -> UnprocessableContent:
    errors = [
        {
            "loc": [where, *(str(part)[:64] for part in err["loc"])],
            "msg": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)[:20]
    ]
    return UnprocessableContent(errors=errors)


def parse_model(model: type[M], body: bytes) -> M:
    """The body as `model`, or the 422 FastAPI would give for it. An empty body is `{}`."""
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise _refusal(exc, "body") from exc


def parse_query(model: type[M], query_string: bytes, lists: frozenset[str]) -> M:
    """The query string as `model`; parameters named in `lists` may repeat (`?tag=a&tag=b`)."""
    values: dict[str, Any] = {}
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError as exc:
        raise UnprocessableContent("The query string is malformed") from exc
    for name, value in pairs:
        if name in lists:
            values.setdefault(name, []).append(value)
        elif name in values:
            raise UnprocessableContent(
                errors=[{"loc": ["query", name[:64]], "msg": "Given twice", "type": "value_error"}]
            )
        else:
            values[name] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise _refusal(exc, "query") from exc


class BareEndpoint:
    """One method on one route; subclasses say how to answer and this renders the outcome."""

    method = "POST"
    route = ""
    """The route template, as the OpenAPI document names it (the label of its metrics)."""
    outcomes: Callable[[str], None] | None = None
    """Called with "ok" or the refusal's problem type, where a metric counts the outcomes."""

    def _count(self, reason: str) -> None:
        if self.outcomes is not None:
            self.outcomes(reason)

    async def answer(self, scope: Scope, receive: Receive) -> bytes | Answer:
        """The 200 body, or the body and extra headers (an ETag, say)."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["method"] != self.method:
            error = MethodNotAllowed(f"{scope['method']} is not allowed on {path}")
            self._count(error.slug)
            await problem_response(error, path, {"Allow": self.method})(scope, receive, send)
            return
        try:
            payload = await self.answer(scope, receive)
        except HomeportError as error:
            self._count(error.slug)
            await problem_response(error, path)(scope, receive, send)
            return
        except Exception as exc:
            if database_unavailable(exc):
                self._count(Unavailable.slug)
                log.warning("database error on %s %s", self.method, path, exc_info=True)
                busy = Unavailable("The database is busy or unreachable; retry shortly")
                await problem_response(busy, path, {"Retry-After": "1"})(scope, receive, send)
                return
            self._count(UNEXPECTED)
            log.exception("unhandled error on %s %s", self.method, path)
            await problem_response(HomeportError("An internal error occurred"), path)(
                scope, receive, send
            )
            return
        self._count(OK)
        extra: list[tuple[bytes, bytes]] = []
        if isinstance(payload, tuple):
            payload, extra = payload
        headers = [*JSON_HEADERS, *extra, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


SERVED_BARE = "served by a BareEndpoint; this declaration only documents it"
