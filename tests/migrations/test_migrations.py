"""Migrations: upgrade from empty, round-trip, and no drift between models and revisions."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.engine.url import make_url

from homeport.db import migrate
from homeport.db.engine import create_engine
from homeport.db.models import Base
from homeport.settings import Settings


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Settings]:
    """A database with no tables at all (PostgreSQL: a new database, dropped afterwards)."""
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path)
        return
    url = make_url(request.getfixturevalue("postgres_url"))
    name = "homeport_mig_" + secrets.token_hex(4)
    admin = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database="postgres"
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield Settings(db_url=url.set(database=name).render_as_string(hide_password=False))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _diff(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def _inspect(settings: Settings, fn: Any) -> Any:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_matches_the_models(empty_db: Settings) -> None:
    await migrate.upgrade(empty_db)
    assert await migrate.is_at_head(empty_db)
    assert await _inspect(empty_db, _tables) == set(Base.metadata.tables)
    assert await _inspect(empty_db, _diff) == []


async def test_downgrade_to_base_and_upgrade_again(empty_db: Settings) -> None:
    await migrate.upgrade(empty_db)
    await migrate.downgrade(empty_db, "base")
    assert await _inspect(empty_db, _tables) == set()
    assert not await migrate.is_at_head(empty_db)
    await migrate.upgrade(empty_db)
    assert await _inspect(empty_db, _diff) == []
