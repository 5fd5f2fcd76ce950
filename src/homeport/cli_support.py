"""What every `homeport` command group shares: settings, running a coroutine, a session."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from homeport.db import migrate as migrations
from homeport.db.engine import create_engine, create_sessionmaker
from homeport.db.session import unit_of_work
from homeport.errors import HomeportError
from homeport.settings import Settings

T = TypeVar("T")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        typer.echo(f"Invalid settings: {exc}", err=True)
        raise typer.Exit(2) from exc


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; a domain error becomes its message and exit status 1."""
    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except HomeportError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc


async def with_session(
    settings: Settings, work: Callable[..., Awaitable[T]], *args: object, **kwargs: object
) -> T:
    """`work(session, *args, **kwargs)` in one committed unit of work (migrating SQLite first)."""
    if settings.auto_migrate:
        await migrations.upgrade(settings)
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            return await work(session, *args, **kwargs)
    finally:
        await engine.dispose()
