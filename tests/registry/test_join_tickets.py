"""Join tickets: single-use, short-lived, and good only at the server they were made for."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url, update

from homeport.clock import FakeClock
from homeport.db.session import unit_of_work
from homeport.fleet import service as fleet_service
from homeport.fleet.spec import FleetSpec
from homeport.registry.models import Server
from homeport.state import AppState
from tests.factories import (
    bearer,
    fleet_servers,
    problem_type,
    register,
    register_server,
    registry_key,
)


async def _ticket(client: httpx.AsyncClient, token: str, server_id: str) -> dict[str, Any]:
    response = await client.post(f"/v1/servers/{server_id}/join-ticket", headers=bearer(token))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _validate(
    client: httpx.AsyncClient, key: str, token: str, server_id: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"player_token": token}
    if server_id is not None:
        body["server_id"] = server_id
    return await client.post("/v1/validate", json=body, headers=bearer(key))


async def test_ticket_admits_once_at_its_server(client: httpx.AsyncClient, state: AppState) -> None:
    key = await registry_key(state)
    server = await register_server(client, key, port=4000)
    player = await register(client, name="Zoe")
    ticket = await _ticket(client, player["access_token"], server["server_id"])
    assert ticket["ticket"].startswith("hp_jt_")
    assert (ticket["address"], ticket["port"]) == ("203.0.113.7", 4000)

    admitted = await _validate(client, key, ticket["ticket"], server["server_id"])
    assert admitted.status_code == 200, admitted.text
    body = admitted.json()
    assert body["player"]["display_name"] == "Zoe"
    assert body["server_id"] == server["server_id"]

    replay = await _validate(client, key, ticket["ticket"], server["server_id"])
    assert replay.status_code == 403
    assert problem_type(replay) == "join-ticket-invalid"


async def test_another_server_can_neither_use_nor_burn_a_ticket(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner = await registry_key(state)
    thief = await registry_key(state)
    server_id = (await register_server(client, owner))["server_id"]
    thief_server = (await register_server(client, thief))["server_id"]
    player = await register(client)
    ticket = (await _ticket(client, player["access_token"], server_id))["ticket"]
    for server in (None, thief_server):
        stolen = await _validate(client, thief, ticket, server)
        assert problem_type(stolen) == "join-ticket-invalid"
    # The owner's key, but claiming another of its servers: refused too.
    second = (await register_server(client, owner, port=9999))["server_id"]
    assert problem_type(await _validate(client, owner, ticket, second)) == "join-ticket-invalid"
    assert (await _validate(client, owner, ticket, server_id)).status_code == 200


async def test_ticket_expires(client: httpx.AsyncClient, state: AppState, clock: FakeClock) -> None:
    key = await registry_key(state)
    server_id = (await register_server(client, key))["server_id"]
    player = await register(client)
    ticket = (await _ticket(client, player["access_token"], server_id))["ticket"]
    clock.advance(61)
    late = await _validate(client, key, ticket)
    assert problem_type(late) == "join-ticket-invalid"


async def test_revoked_session_voids_its_tickets(
    client: httpx.AsyncClient, state: AppState
) -> None:
    key = await registry_key(state)
    server_id = (await register_server(client, key))["server_id"]
    player = await register(client)
    ticket = (await _ticket(client, player["access_token"], server_id))["ticket"]
    logout = await client.post("/v1/auth/logout", json={"refresh_token": player["refresh_token"]})
    assert logout.status_code == 204, logout.text
    assert problem_type(await _validate(client, key, ticket)) == "session-revoked"


async def test_servers_may_require_tickets(client: httpx.AsyncClient, state: AppState) -> None:
    key = await registry_key(state)
    server_id = (await register_server(client, key, require_join_ticket=True))["server_id"]
    player = await register(client)
    plain = await _validate(client, key, player["access_token"], server_id)
    assert plain.status_code == 403
    assert problem_type(plain) == "join-ticket-required"
    ticket = (await _ticket(client, player["access_token"], server_id))["ticket"]
    assert (await _validate(client, key, ticket, server_id)).status_code == 200

    open_server = (await register_server(client, key, port=8000))["server_id"]
    assert (await _validate(client, key, player["access_token"], open_server)).status_code == 200
    other = await registry_key(state)
    foreign = await _validate(client, other, player["access_token"], open_server)
    assert problem_type(foreign) == "not-server-owner"


async def test_no_ticket_for_full_draining_or_unknown_servers(
    client: httpx.AsyncClient, state: AppState
) -> None:
    key = await registry_key(state)
    full = (await register_server(client, key, port=1, players=2, max_players=2))["server_id"]
    draining = (await register_server(client, key, port=2, state="draining"))["server_id"]
    token = (await register(client))["access_token"]
    for server_id in (full, draining):
        response = await client.post(f"/v1/servers/{server_id}/join-ticket", headers=bearer(token))
        assert response.status_code == 409
        assert problem_type(response) == "server-not-joinable"
    unknown = await client.post(
        "/v1/servers/3f1d7a52-8b9e-4c1e-9e0b-1d2c3b4a5f60/join-ticket", headers=bearer(token)
    )
    assert problem_type(unknown) == "server-not-found"
    anonymous = await client.post(f"/v1/servers/{full}/join-ticket")
    assert problem_type(anonymous) == "token-missing"


async def test_a_ticket_only_servers_key_must_name_the_server(
    client: httpx.AsyncClient, state: AppState
) -> None:
    key = await registry_key(state)
    strict = (await register_server(client, key, port=4000, require_join_ticket=True))["server_id"]
    relaxed = (await register_server(client, key, port=4001))["server_id"]
    token = (await register(client))["access_token"]
    # Leaving out server_id must not get round the ticket-only server's rule.
    unnamed = await _validate(client, key, token)
    assert unnamed.status_code == 403
    assert problem_type(unnamed) == "join-ticket-required"
    assert problem_type(await _validate(client, key, token, strict)) == "join-ticket-required"
    assert (await _validate(client, key, token, relaxed)).status_code == 200
    # Other keys are unaffected, and once the strict server leaves, so is this one.
    assert (await _validate(client, await registry_key(state), token)).status_code == 200
    deleted = await client.delete(f"/v1/servers/{strict}", headers=bearer(key))
    assert deleted.status_code == 204
    assert (await _validate(client, key, token)).status_code == 200


async def test_a_ticket_for_a_server_deleted_meanwhile_is_404_not_500(
    client: httpx.AsyncClient, state: AppState
) -> None:
    if state.settings.is_sqlite:
        pytest.skip("SQLite runs one writer at a time: the deletion cannot overlap the insert")
    key = await registry_key(state)
    server_id = (await register_server(client, key))["server_id"]
    token = (await register(client))["access_token"]
    dsn = make_url(state.settings.database_url).set(drivername="postgresql")
    other = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        deletion = other.transaction()
        await deletion.start()
        await other.execute("DELETE FROM servers WHERE id = $1", uuid.UUID(server_id))
        asked = asyncio.create_task(
            client.post(f"/v1/servers/{server_id}/join-ticket", headers=bearer(token))
        )
        await asyncio.sleep(0.3)  # the ticket's insert now waits on the deleted row's lock
        await deletion.commit()
        response = await asyncio.wait_for(asked, 10)
    finally:
        await other.close()
    assert response.status_code == 404, response.text
    assert problem_type(response) == "server-not-found"


async def test_a_fleet_server_registering_again_keeps_its_tickets_and_allocation(
    client: httpx.AsyncClient, state: AppState
) -> None:
    """A fleet server's registration retried after a timeout (the first attempt landed late)
    is the same server: the tickets made for it meanwhile and the fleet's allocation stay."""
    configured = state.settings.model_copy(update={"fleets": {"arena": FleetSpec()}})
    await fleet_service.store_configured(state.sessions, state.clock, configured)
    [(server_id, key)] = await fleet_servers(state, client, "arena", 1)
    allocation = {"allocation": {"allocation_id": "a-1", "match_id": "m-1", "players": []}}
    async with unit_of_work(state.sessions) as session:
        await session.execute(
            update(Server).where(Server.id == uuid.UUID(server_id)).values(directive=allocation)
        )
    player = await register(client, name="Zoe")
    ticket = await _ticket(client, player["access_token"], server_id)
    body = {"name": "again", "port": 7100, "address": "127.0.0.1", "max_players": 8}
    again = await client.post("/v1/servers", json=body, headers=bearer(key))
    assert again.status_code == 201, again.text
    assert again.json()["server_id"] == server_id
    assert again.json()["server"]["name"] == "again"
    admitted = await _validate(client, key, ticket["ticket"], server_id)
    assert admitted.status_code == 200, admitted.text
    beat = await client.put(
        f"/v1/servers/{server_id}/heartbeat", json={"players": 1}, headers=bearer(key)
    )
    assert beat.json()["allocation"]["match_id"] == "m-1"
