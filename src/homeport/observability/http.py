"""Every HTTP request, bare endpoints included: its id, its count and latency, its access line.

Requests are labelled by route template (`/v1/servers/{server_id}/heartbeat`), never by path,
so ids in paths cannot multiply the series; a path no route serves is `unmatched`. The bare
endpoints note their template in the scope under `ROUTE_KEY` before they run; FastAPI's router
leaves the route it chose in the scope (middlewares change the scope in place to keep it so).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from homeport.observability import request_ids
from homeport.observability.instruments import HTTP_DURATION, HTTP_REQUESTS

ROUTE_KEY = "homeport.route"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
access_log = logging.getLogger("homeport.access")
Record = tuple[Callable[[], None], Callable[[float], None]]


def _template(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


class HttpObserver:
    def __init__(self, app: ASGIApp, *, access: bool) -> None:
        self.app = app
        self.access = access
        """Whether to write an access line per request (JSON logs only: text logs stay quiet)."""
        self._records: dict[tuple[str, str, int], Record] = {}

    def _record(self, method: str, route: str, status: int) -> Record:
        key = (method, route, status)
        found = self._records.get(key)
        if found is None:
            count = HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc
            found = self._records[key] = (count, HTTP_DURATION.labels(method, route).observe)
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = request_ids.from_headers(scope["headers"])
        token = request_ids.current.set(request_id)
        echoed = (request_ids.HEADER, request_id.encode("ascii"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get(ROUTE_KEY) or _template(scope)
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            count, observe = self._record(method, route, status)
            count()
            observe(elapsed)
            if self.access and access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d",
                    method,
                    route,
                    status,
                    extra={
                        "method": method,
                        "route": route,
                        "path": scope["path"][:256],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                    },
                )
            request_ids.current.reset(token)
