"""A server's life in the registry: register, heartbeat, expire or deregister."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import httpx
import pytest
from sqlalchemy import func, make_url, select

from homeport.clock import FakeClock
from homeport.db.session import unit_of_work
from homeport.events.models import EventRow
from homeport.identity.server_keys import KeyKind
from homeport.registry.models import Server
from homeport.registry.service import purge_expired
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type, register_server, registry_key


async def _listed_ids(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/v1/servers")
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["servers"]]


async def _beat(
    client: httpx.AsyncClient, key: str, server_id: str, **body: object
) -> httpx.Response:
    return await client.put(f"/v1/servers/{server_id}/heartbeat", json=body, headers=bearer(key))


async def _event_kinds(state: AppState) -> list[str]:
    async with state.read_sessions() as session:
        return list(await session.scalars(select(EventRow.kind).order_by(EventRow.id)))


async def test_register_then_listed_with_the_seed_fields(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    key = await registry_key(state)
    body = await register_server(
        client,
        key,
        name="EU Survival #1",
        port=24565,
        map="island",
        mode="survival",
        region="eu-west",
        version="1.4.2",
        players=3,
        max_players=32,
        tags=["pvp", "modded"],
        metadata={"difficulty": "hard"},
        private_metadata={"rcon_port": 25575},
        password_protected=True,
    )
    assert body["heartbeat_interval"] == 30
    assert body["expires_at"].startswith((clock.now() + timedelta(seconds=90)).isoformat()[:19])
    assert body["server"]["address"] == "203.0.113.7"
    assert body["server"]["private_metadata"] == {"rcon_port": 25575}

    listed = (await client.get("/v1/servers")).json()["servers"]
    assert len(listed) == 1
    server = listed[0]
    assert server["id"] == body["server_id"]
    assert (server["name"], server["port"], server["map"], server["players"]) == (
        "EU Survival #1",
        24565,
        "island",
        3,
    )
    assert server["tags"] == ["pvp", "modded"]
    assert server["metadata"] == {"difficulty": "hard"}
    assert server["password_protected"] is True
    assert server["state"] == "starting"
    for secret in ("private_metadata", "key_id", "player_ids"):
        assert secret not in server
    one = await client.get(f"/v1/servers/{body['server_id']}")
    assert one.status_code == 200
    assert one.json() == server
    assert "server.registered" in await _event_kinds(state)


async def test_heartbeat_updates_and_renews_the_lease(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    key = await registry_key(state)
    server_id = (await register_server(client, key))["server_id"]
    player = "0b7e8f1c-9a55-4d1c-8d62-2f0a0f4a9c11"
    for _ in range(3):
        clock.advance(80)
        response = await _beat(
            client, key, server_id, players=5, map="desert", state="ready", player_ids=[player]
        )
        assert response.status_code == 200, response.text
        assert response.json()["heartbeat_interval"] == 30
    assert await _listed_ids(client) == [server_id]
    server = (await client.get(f"/v1/servers/{server_id}")).json()
    assert (server["players"], server["map"], server["state"]) == (5, "desert", "ready")
    async with state.read_sessions() as session:
        row = await session.get(Server, uuid.UUID(server_id))
        assert row is not None
        assert row.player_ids == [player]
    # An empty body only renews the lease and keeps every value.
    empty = await client.put(f"/v1/servers/{server_id}/heartbeat", headers=bearer(key))
    assert empty.status_code == 200, empty.text
    assert (await client.get(f"/v1/servers/{server_id}")).json()["players"] == 5
    kinds = await _event_kinds(state)
    assert kinds.count("server.state_changed") == 1


async def test_missed_lease_vanishes_at_once_and_is_purged(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    key = await registry_key(state)
    server_id = (await register_server(client, key))["server_id"]
    clock.advance(89)
    assert await _listed_ids(client) == [server_id]
    clock.advance(1)
    assert await _listed_ids(client) == []
    assert (await client.get(f"/v1/servers/{server_id}")).status_code == 404
    late = await _beat(client, key, server_id, players=1)
    assert late.status_code == 404
    assert problem_type(late) == "server-not-registered"

    async with unit_of_work(state.sessions) as session:
        assert await purge_expired(session, state.clock) == 1
    async with state.read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Server)) == 0
    assert (await _event_kinds(state))[-1] == "server.expired"


async def test_purge_spares_a_server_renewed_while_it_runs(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    """A replica whose clock runs behind renews a lease the purging replica sees as lapsed:
    the row it holds locked is skipped, and once renewed it is no longer purged."""
    if state.settings.is_sqlite:
        pytest.skip("SQLite runs one writer at a time: no purge overlaps a renewal")
    key = await registry_key(state)
    server_id = (await register_server(client, key))["server_id"]
    clock.advance(91)
    dsn = make_url(state.settings.database_url).set(drivername="postgresql")
    other = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        renewal = other.transaction()
        await renewal.start()
        await other.execute(
            "UPDATE servers SET lease_expires_at = $1 WHERE id = $2",
            clock.now() + timedelta(seconds=90),
            uuid.UUID(server_id),
        )
        async with unit_of_work(state.sessions) as session:
            assert await asyncio.wait_for(purge_expired(session, state.clock), 5) == 0
        await renewal.commit()
    finally:
        await other.close()
    async with unit_of_work(state.sessions) as session:
        assert await purge_expired(session, state.clock) == 0
    assert await _listed_ids(client) == [server_id]
    assert "server.expired" not in await _event_kinds(state)


async def test_reregistering_replaces_the_entry(client: httpx.AsyncClient, state: AppState) -> None:
    key = await registry_key(state)
    first = (await register_server(client, key, port=7000))["server_id"]
    second = (await register_server(client, key, port=7000, map="other"))["server_id"]
    assert first != second
    assert await _listed_ids(client) == [second]
    assert problem_type(await _beat(client, key, first)) == "server-not-registered"
    # Another key on the same address and port is another server.
    other = (await register_server(client, await registry_key(state), port=7000))["server_id"]
    assert sorted(await _listed_ids(client)) == sorted([second, other])


async def test_only_the_registering_key_may_change_a_server(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner = await registry_key(state)
    intruder = await registry_key(state)
    server_id = (await register_server(client, owner))["server_id"]
    refused = await _beat(client, intruder, server_id, players=0)
    assert refused.status_code == 403
    assert problem_type(refused) == "not-server-owner"
    gone = await client.delete(f"/v1/servers/{server_id}", headers=bearer(intruder))
    assert problem_type(gone) == "not-server-owner"
    assert await _listed_ids(client) == [server_id]
    admin = await make_key(state, kind=KeyKind.ADMIN)
    assert (
        await client.delete(f"/v1/servers/{server_id}", headers=bearer(admin))
    ).status_code == 204


async def test_deregister_is_the_graceful_exit(client: httpx.AsyncClient, state: AppState) -> None:
    key = await registry_key(state)
    server_id = (await register_server(client, key))["server_id"]
    response = await client.delete(f"/v1/servers/{server_id}", headers=bearer(key))
    assert response.status_code == 204
    assert await _listed_ids(client) == []
    assert problem_type(await _beat(client, key, server_id)) == "server-not-registered"
    again = await client.delete(f"/v1/servers/{server_id}", headers=bearer(key))
    assert again.status_code == 404
    assert (await _event_kinds(state))[-1] == "server.deregistered"


async def test_keys_need_the_registry_scope(client: httpx.AsyncClient, state: AppState) -> None:
    validate_only = await make_key(state, scopes={"validate"})
    body = {"name": "x", "port": 1, "max_players": 2}
    refused = await client.post("/v1/servers", json=body, headers=bearer(validate_only))
    assert refused.status_code == 403
    assert problem_type(refused) == "missing-scope"
    anonymous = await client.post("/v1/servers", json=body)
    assert anonymous.status_code == 401
    key = await registry_key(state)
    server_id = (await register_server(client, key))["server_id"]
    assert (await _beat(client, validate_only, server_id)).status_code == 403
    assert (await client.put(f"/v1/servers/{server_id}/heartbeat", json={})).status_code == 401
