"""Request-body rules applied before any route runs.

* A JSON body that arrives with no `Content-Type` is read as JSON. Godot's `HTTPRequest` sends
  exactly that when a game passes only an `Authorization` header, and FastAPI would otherwise
  take the body for a string and answer 422.
* A body declared as anything but JSON gets 415.
* A body larger than `http_max_body_bytes` gets 413, before it is read in full when it declares
  its length, and as soon as the limit is crossed when it is streamed.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from homeport.errors import PayloadTooLarge, UnsupportedMediaType
from homeport.problems import problem_response

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_PATH_PREFIX = "/v1/"


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


class JsonBodyMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in BODY_METHODS
            or not scope["path"].startswith(JSON_PATH_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        content_type: bytes | None = None
        length: int | None = None
        for name, value in headers:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
        if length is not None and length > self.max_body_bytes:
            await self._refuse(scope, send, self._too_large())
            return
        if content_type is None:
            if length != 0:
                headers.append((b"content-type", b"application/json"))
                scope = {**scope, "headers": headers}
        elif not _is_json(content_type):
            await self._refuse(
                scope,
                send,
                UnsupportedMediaType(
                    f"Send JSON (application/json), not {content_type.decode('latin-1')[:80]}"
                ),
            )
            return
        await self.app(scope, self._limited(receive), send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The body is larger than {self.max_body_bytes} bytes", max_bytes=self.max_body_bytes
        )

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise self._too_large()
            return message

        return limited_receive

    @staticmethod
    async def _refuse(
        scope: Scope, send: Send, error: PayloadTooLarge | UnsupportedMediaType
    ) -> None:
        response = problem_response(error, scope["path"])
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
