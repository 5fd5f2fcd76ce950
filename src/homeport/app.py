"""The ASGI application: routers, error rendering, body rules and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from homeport import __version__, health, problems
from homeport.clock import Clock, SystemClock
from homeport.identity.routes import router as identity_router
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
    app.add_middleware(JsonBodyMiddleware, max_body_bytes=settings.http_max_body_bytes)
    return app


def create_app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory` and worker processes: settings from env and TOML."""
    return create_app()
