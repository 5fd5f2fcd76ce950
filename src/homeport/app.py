"""The ASGI application: routers, error rendering, body rules and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from homeport import __version__, health, problems
from homeport.clock import Clock, SystemClock
from homeport.identity import validate_endpoint
from homeport.identity.routes import router as identity_router
from homeport.identity.validate_endpoint import ValidateEndpoint, ValidateRoute
from homeport.middleware import JsonBodyMiddleware
from homeport.settings import Settings
from homeport.state import AppState


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    state = AppState.build(settings, clock or SystemClock())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
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
    app.add_middleware(
        ValidateRoute,
        endpoint=JsonBodyMiddleware(ValidateEndpoint(state), max_body_bytes=max_body),
    )
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


def create_app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory` and worker processes: settings from env and TOML."""
    return create_app()
