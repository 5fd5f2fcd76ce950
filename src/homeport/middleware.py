"""Request-body rules applied before any route runs.

* A JSON body that arrives with no `Content-Type` is read as JSON. Godot's `HTTPRequest` sends
  exactly that when a game passes only an `Authorization` header, and FastAPI would otherwise
  take the body for a string and answer 422.
* A body declared as anything but JSON gets 415.
* A body larger than `http_max_body_bytes` gets 413, before it is read in full when it declares
  its length, and as soon as the limit is crossed when it is streamed.
* Routes that take raw bytes (a world's chunks) say so through `raw`: their bodies must be
  `application/octet-stream` (or untyped) and have a limit and time of their own.

Bare endpoints (`app.HomeportApp.bare_routes`) call `check_body_headers` and `read_body` directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from homeport.errors import (
    BodyNotRead,
    HomeportError,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from homeport.problems import problem_response

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_PATH_PREFIX = "/v1/"


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def too_large(max_body_bytes: int) -> PayloadTooLarge:
    return BodyNotRead(f"The body is larger than {max_body_bytes} bytes", max_bytes=max_body_bytes)


def check_body_headers(headers: Iterable[tuple[bytes, bytes]], max_body_bytes: int) -> bool:
    """Apply the body rules to a request's headers; True when a body came without a type."""
    content_type: bytes | None = None
    length: int | None = None
    for name, value in headers:
        if name == b"content-type":
            # The first one, as the framework reads it.
            content_type = value if content_type is None else content_type
        elif name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
    if length is not None and length > max_body_bytes:
        raise too_large(max_body_bytes)
    if content_type is None:
        return length != 0
    if not _is_json(content_type):
        shown = content_type.decode("latin-1")[:80]
        raise UnsupportedMediaType(f"Send JSON (application/json), not {shown}")
    return False


def check_raw_headers(headers: Iterable[tuple[bytes, bytes]], max_body_bytes: int) -> None:
    for name, value in headers:
        if name == b"content-length":
            try:
                if int(value) > max_body_bytes:
                    raise too_large(max_body_bytes)
            except ValueError:
                pass
        elif name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            if media != b"application/octet-stream":
                shown = value.decode("latin-1")[:80]
                raise UnsupportedMediaType(
                    f"Send the bytes as application/octet-stream, not {shown}"
                )


RawRule = Callable[[str, str], tuple[int, float] | None]
"""(method, path) -> (max body bytes, seconds it may take) for routes that take raw bytes."""


def _timed_out(timeout: float) -> RequestTimeout:
    return RequestTimeout(f"The whole body must arrive within {timeout:g} s")


async def read_body(receive: Receive, max_body_bytes: int, within: float) -> bytes:
    """The whole request body, refused as soon as it passes the limit or takes too long (the
    server has no timeout of its own for a body that stalls after its headers)."""
    try:
        async with asyncio.timeout(within):
            return await _read_all(receive, max_body_bytes)
    except TimeoutError as exc:
        raise _timed_out(within) from exc


async def _read_all(receive: Receive, max_body_bytes: int) -> bytes:
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > max_body_bytes:
            raise too_large(max_body_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class JsonBodyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_timeout: float,
        larger: dict[str, int] | None = None,
        raw: RawRule | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.larger = tuple((larger or {}).items())
        """Path prefixes whose bodies may be bigger (a player's whole save, in one batch)."""
        self.raw = raw

    def _limit(self, path: str) -> int:
        for prefix, limit in self.larger:
            if path.startswith(prefix):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in BODY_METHODS
            or not scope["path"].startswith(JSON_PATH_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        raw = self.raw(scope["method"], scope["path"]) if self.raw else None
        if raw is not None:
            limit, within = raw
            try:
                check_raw_headers(scope["headers"], limit)
            except HomeportError as error:
                await problem_response(error, scope["path"])(scope, _no_body, send)
                return
            await self.app(scope, self._limited(receive, limit, within), send)
            return
        limit = self._limit(scope["path"])
        try:
            untyped = check_body_headers(scope["headers"], limit)
        except HomeportError as error:
            await problem_response(error, scope["path"])(scope, _no_body, send)
            return
        if untyped:
            # In place, not a copy: the route the router picks is left in this same scope,
            # where `observability.http` reads it.
            scope["headers"] = [*scope["headers"], (b"content-type", b"application/json")]
        await self.app(scope, self._limited(receive, limit, self.body_timeout), send)

    def _limited(self, receive: Receive, limit: int, within: float) -> Receive:
        seen = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within

        async def limited_receive() -> Message:
            nonlocal seen
            if seen == -1:  # the body has arrived: what follows is the disconnect, no timeout
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError as exc:
                raise _timed_out(within) from exc
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large(limit)
                if not message.get("more_body", False):
                    seen = -1
            return message

        return limited_receive


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
