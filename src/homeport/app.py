"""The ASGI application: routers, error rendering, body rules and lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from homeport import __version__, health, problems
from homeport.background import leader_loops
from homeport.clock import Clock, SystemClock
from homeport.dashboard.routes import install as install_dashboard
from homeport.errors import PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from homeport.fleet import service as fleet_service
from homeport.fleet.routes import router as fleet_router
from homeport.identity.routes import router as identity_router
from homeport.leaderboards import rank_endpoint, submit_endpoint
from homeport.leaderboards.rank_endpoint import RankEndpoint
from homeport.leaderboards.routes import router as leaderboards_router
from homeport.leaderboards.submit_endpoint import SubmitEndpoint
from homeport.matchmaking import queue_admin
from homeport.matchmaking.realtime import router as realtime_router
from homeport.matchmaking.routes import router as matchmaking_router
from homeport.middleware import JsonBodyMiddleware
from homeport.observability.http import ROUTE_KEY, HttpObserver
from homeport.observability.routes import router as observability_router
from homeport.openapi import problems as declared_problems
from homeport.players import save_endpoint
from homeport.players.inventory_routes import router as inventory_router
from homeport.players.routes import router as players_router
from homeport.players.save_endpoint import SaveEndpoint
from homeport.registry import heartbeat_endpoint, list_endpoint
from homeport.registry.heartbeat_endpoint import HeartbeatEndpoint
from homeport.registry.list_endpoint import ListEndpoint
from homeport.registry.routes import router as registry_router
from homeport.settings import Settings
from homeport.state import AppState
from homeport.trust import validate
from homeport.trust.validate import ValidateEndpoint
from homeport.worlds.routes import raw_bodies as worlds_raw_bodies
from homeport.worlds.routes import router as worlds_router

log = logging.getLogger("homeport.app")


class HomeportApp(FastAPI):
    """FastAPI, plus a few hot endpoints answered before its middleware stack and routing.

    Those endpoints are plain ASGI apps that keep every rule the rest of the API follows (body
    rules, problem+json errors); they skip only the framework's per-request machinery.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bare_routes: dict[str, ASGIApp] = {}
        self.bare_patterns: list[tuple[Callable[[str, str], bool], ASGIApp]] = []
        """(matches(method, path), endpoint): the first match serves the request."""
        self.bare_declarations: list[BaseRoute] = []
        """Routes FastAPI documents but never serves: the bare endpoints' OpenAPI."""
        self.http = HttpObserver(self._serve_http, access=False)
        """Every HTTP request passes here first: request id, metrics, access log."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _serve_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # mounted under a prefix: match the route part
            path = path[len(root) :]
        endpoint = self.bare_routes.get(path)
        if endpoint is None:
            method = scope["method"]
            endpoint = next((a for match, a in self.bare_patterns if match(method, path)), None)
        if endpoint is not None:
            scope[ROUTE_KEY] = getattr(endpoint, "route", path)
            if path is not scope["path"]:
                scope = {**scope, "path": path, "root_path": ""}
            await endpoint(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> HomeportApp:
    settings = settings or Settings()
    state = AppState.build(settings, clock or SystemClock())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything built so far lives as long as the process. Freezing it keeps the garbage
        # collector's full passes from walking it again and again: they were ~60 ms pauses,
        # the largest part of /v1/validate's tail latency.
        gc.collect()
        gc.freeze()
        await state.bus.start()
        await state.worlds.started()
        try:
            if settings.fleets:
                await fleet_service.store_configured(state.sessions, state.clock, settings)
            if settings.matchmaking_queues:
                await queue_admin.store_configured(state.sessions, state.clock, settings)
        except Exception:  # the database may come up later; the leader loops store them too
            log.warning("could not store the configured fleets and queues yet", exc_info=True)
        loops = leader_loops(state)
        app.state.loops = loops
        for loop in loops:
            loop.start()
        try:
            yield
        finally:
            for loop in loops:
                await loop.stop()
            await state.close()

    app = HomeportApp(
        title="Homeport",
        version=__version__,
        summary="Platform backend for Godot 4 multiplayer games with dedicated servers.",
        lifespan=lifespan,
    )
    app.state.homeport = state
    app.http.access = settings.log_format == "json"
    problems.install(app)
    app.include_router(health.router)
    app.include_router(observability_router)
    app.include_router(identity_router)
    app.include_router(registry_router)
    app.include_router(players_router)
    app.include_router(inventory_router)
    app.include_router(leaderboards_router)
    app.include_router(fleet_router)
    app.include_router(matchmaking_router)
    app.include_router(realtime_router)
    app.include_router(worlds_router)
    install_dashboard(app, state)
    max_body = settings.http_max_body_bytes
    app.add_middleware(
        JsonBodyMiddleware,
        max_body_bytes=max_body,
        body_timeout=settings.http_body_timeout,
        larger={
            "/v1/players/": max(max_body, settings.players_request_max_bytes),
            "/v1/worlds/": max(max_body, settings.worlds_manifest_max_bytes),
        },
        raw=worlds_raw_bodies(settings),
    )
    app.bare_routes[validate.PATH] = ValidateEndpoint(state)
    app.bare_patterns.append(
        (lambda _method, path: heartbeat_endpoint.matches(path), HeartbeatEndpoint(state))
    )
    app.bare_patterns.append((save_endpoint.matches, SaveEndpoint(state)))
    app.bare_patterns.append((list_endpoint.matches, ListEndpoint(state)))
    app.bare_patterns.append(
        (
            lambda method, path: method == "POST" and submit_endpoint.matches(path),
            SubmitEndpoint(state),
        )
    )
    app.bare_patterns.append(
        (lambda method, path: method == "GET" and rank_endpoint.matches(path), RankEndpoint(state))
    )
    app.bare_declarations += validate.declarations.routes
    app.bare_declarations += heartbeat_endpoint.declarations.routes
    _document_bare_endpoints(app)
    return app


def _document_bare_endpoints(app: HomeportApp) -> None:
    """Describe the endpoints served outside FastAPI's routing in the OpenAPI document too."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=[*app.routes, *app.bare_declarations],
            )
            _declare_body_refusals(schema)
            components = schema.setdefault("components", {})
            components.setdefault("securitySchemes", {})["ServerKey"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "A server key, hp_sk_...",
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


BODY_REFUSALS = (PayloadTooLarge, UnsupportedMediaType, RequestTimeout)
"""What any operation with a body may answer before it runs (see `middleware`)."""


def _declare_body_refusals(schema: dict[str, Any]) -> None:
    declared = declared_problems(*BODY_REFUSALS)
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                responses = operation.setdefault("responses", {})
                for status, answer in declared.items():
                    if str(status) != "422":
                        responses.setdefault(str(status), answer)


def create_app_from_environment() -> HomeportApp:
    """Factory for the server's worker processes: settings from env and TOML."""
    return create_app()
