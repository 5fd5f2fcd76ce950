"""Run Alembic from inside Homeport, against the database the settings name."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from homeport.db.engine import create_engine
from homeport.settings import Settings


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("homeport.db") / "migrations"))
    return cfg


def _upgrade(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _downgrade(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


def _current(connection: Connection) -> Any:
    return MigrationContext.configure(connection).get_current_heads()


async def upgrade(settings: Settings, revision: str = "head") -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, alembic_config(), revision)
    finally:
        await engine.dispose()


async def downgrade(settings: Settings, revision: str) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade, alembic_config(), revision)
    finally:
        await engine.dispose()


async def is_at_head(settings: Settings) -> bool:
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            current = set(await conn.run_sync(_current))
    finally:
        await engine.dispose()
    return current == heads
