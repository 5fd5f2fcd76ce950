"""The ASGI application: routers, error rendering, body rules and lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from homeport import __version__, health, problems
from homeport.clock import Clock, SystemClock
from homeport.identity import validate_endpoint
from homeport.identity.routes import router as identity_router
from homeport.identity.validate_endpoint import ValidateEndpoint
from homeport.middleware import JsonBodyMiddleware
from homeport.settings import Settings
from homeport.state import AppState


class HomeportApp(FastAPI):
    """FastAPI, plus a few hot endpoints answered before its middleware stack and routing.

    Those endpoints are plain ASGI apps that keep every rule the rest of the API follows (body
    rules, problem+json errors); they skip only the framework's per-request machinery.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bare_routes: dict[str, ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.bare_routes.get(scope["path"])
            if endpoint is not None:
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
        try:
            yield
        finally:
            await state.close()

    app = HomeportApp(
        title="Homeport",
        version=__version__,
        summary="Platform backend for Godot 4 multiplayer games with dedicated servers.",
        lifespan=lifespan,
    )
    app.state.homeport = state
    problems.install(app)
    app.include_router(health.router)
    app.include_router(identity_router)
    max_body = settings.http_max_body_bytes
    app.add_middleware(JsonBodyMiddleware, max_body_bytes=max_body)
    app.bare_routes[validate_endpoint.PATH] = ValidateEndpoint(state)
    _document_bare_endpoints(app)
    return app


def _document_bare_endpoints(app: FastAPI) -> None:
    """Add the endpoints served outside FastAPI's routing to the OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            schema["paths"][validate_endpoint.PATH] = validate_endpoint.openapi_path()
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(validate_endpoint.openapi_schemas())
            components.setdefault("securitySchemes", {})["ServerKey"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "A server key, hp_sk_...",
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app_from_environment() -> HomeportApp:
    """Factory for the server's worker processes: settings from env and TOML."""
    return create_app()
