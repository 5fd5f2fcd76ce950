"""A database that is locked or drops the connection mid-heartbeat: 503 and retry, never 500."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url

from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer, problem_type, register_server, registry_key


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(db_sqlite_busy_timeout=0.2)


def _assert_retry_later(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert problem_type(response) == "unavailable"
    assert response.headers["retry-after"] == "1"


async def _beat(client: httpx.AsyncClient, key: str, server_id: str) -> httpx.Response:
    return await client.put(
        f"/v1/servers/{server_id}/heartbeat", json={"players": 3}, headers=bearer(key)
    )


async def test_a_locked_sqlite_database_answers_503_then_recovers(
    client: httpx.AsyncClient, state: AppState
) -> None:
    if not state.settings.is_sqlite:
        pytest.skip("SQLite's write lock")
    key = await registry_key(state)
    server_id = (await register_server(client, key))["server_id"]
    path = make_url(state.settings.database_url).database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # another process holding the write lock too long
        _assert_retry_later(await _beat(client, key, server_id))
        other.execute("ROLLBACK")
    finally:
        other.close()
    response = await _beat(client, key, server_id)
    assert response.status_code == 200, response.text
    assert (await client.get(f"/v1/servers/{server_id}")).json()["players"] == 3


async def test_a_postgres_connection_killed_mid_heartbeat_answers_503_then_recovers(
    client: httpx.AsyncClient, state: AppState
) -> None:
    if state.settings.is_sqlite:
        pytest.skip("PostgreSQL's backends")
    key = await registry_key(state)
    server_id = (await register_server(client, key))["server_id"]
    dsn = make_url(state.settings.database_url).set(drivername="postgresql")
    admin = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        locker = admin.transaction()
        await locker.start()
        await admin.execute("LOCK TABLE servers IN ACCESS EXCLUSIVE MODE")
        beat = asyncio.create_task(_beat(client, key, server_id))
        waiting: list[int] = []
        for _ in range(200):  # the heartbeat's group now waits for the lock
            waiting = [
                row["pid"]
                for row in await admin.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database() AND pid <> pg_backend_pid()"
                )
            ]
            if waiting:
                break
            await asyncio.sleep(0.02)
        assert waiting, "the heartbeat never reached the database"
        # An administrator (or a failover) ends the backend under the open transaction.
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", waiting
        )
        _assert_retry_later(await beat)
        await locker.rollback()
    finally:
        await admin.close()
    response = await _beat(client, key, server_id)
    assert response.status_code == 200, response.text
    assert (await client.get(f"/v1/servers/{server_id}")).json()["players"] == 3
