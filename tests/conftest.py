"""Fixtures shared by the whole suite.

Every test that takes `db_url` runs twice: on SQLite and on a real PostgreSQL server (started by
`scripts/test`, which exports HOMEPORT_TEST_POSTGRES_URL). Schemas are built by the Alembic
migrations, never by `create_all`, so every run tests the migrations too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, text

from homeport.app import create_app
from homeport.clock import FakeClock
from homeport.db import migrate
from homeport.db.engine import create_engine
from homeport.db.models import Base
from homeport.settings import Settings
from homeport.state import AppState

POSTGRES_ENV = "HOMEPORT_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "HOMEPORT_TEST_REQUIRE_POSTGRES"

# Cheap argon2 parameters: the suite hashes hundreds of passwords.
FAST_HASHING: dict[str, Any] = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 1024,
    "argon2_parallelism": 1,
}


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's HOMEPORT_* variables or homeport.toml leak into a test."""
    for name in list(os.environ):
        if name.startswith("HOMEPORT_") and name not in (POSTGRES_ENV, REQUIRE_POSTGRES_ENV):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


async def _database_of_its_own(url: str, name: str) -> str:
    """Parallel workers each truncate and migrate a database, so each gets its own in the one
    cluster; advisory locks and LISTEN channels are per database, so they do not meet either."""
    base = make_url(url)
    connection = await asyncpg.connect(
        base.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get(REQUIRE_POSTGRES_ENV):
            pytest.fail(f"{POSTGRES_ENV} is not set but PostgreSQL is required")
        pytest.skip("PostgreSQL not available: run the suite with scripts/test")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        database = make_url(url).database or "homeport_test"
        return asyncio.run(_database_of_its_own(url, f"{database}_{worker}"))
    return url


@pytest.fixture(scope="session")
def _postgres_migrated(postgres_url: str) -> str:
    asyncio.run(migrate.upgrade(Settings(db_url=postgres_url)))
    return postgres_url


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sqlite-template")
    asyncio.run(migrate.upgrade(Settings(data_dir=directory)))
    return directory / "homeport.db"


async def _empty_postgres(url: str) -> None:
    engine = create_engine(Settings(db_url=url))
    try:
        async with engine.begin() as conn:
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} CASCADE"))
    finally:
        await engine.dispose()


def database_for(request: pytest.FixtureRequest, directory: Path) -> str:
    """A migrated, empty database of the kind the fixture's param names (SQLite in
    `directory`); also for module-scoped fixtures that share one live server."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        target = directory / "db" / "homeport.db"
        target.parent.mkdir(parents=True)
        shutil.copy(template, target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("_postgres_migrated")
    asyncio.run(_empty_postgres(url))
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each kind."""
    return database_for(request, tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_settings(db_url: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "db_url": db_url, **FAST_HASHING}
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    yield application
    await application.state.homeport.close()


@pytest.fixture
def state(app: FastAPI) -> AppState:
    result: AppState = app.state.homeport
    return result


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://homeport.test") as c:
        yield c
