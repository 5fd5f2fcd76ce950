"""Small, explicit ways to make the things tests need."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from homeport.db.session import unit_of_work
from homeport.identity import service_keys
from homeport.identity.server_keys import SCOPES, KeyKind
from homeport.state import AppState

_counter = itertools.count(1)
PASSWORD = "correct horse battery"


async def make_key(
    state: AppState,
    *,
    scopes: set[str] | None = None,
    kind: KeyKind = KeyKind.SERVER,
    name: str = "",
) -> str:
    """A server key (scope `validate` unless told) or an admin key; returns the key itself."""
    chosen = frozenset(SCOPES if kind is KeyKind.ADMIN else (scopes or {"validate"}))
    async with unit_of_work(state.sessions) as session:
        created = await service_keys.create_key(
            session, state.clock, name=name or f"key-{next(_counter)}", kind=kind, scopes=chosen
        )
    return created.key


async def register(
    client: httpx.AsyncClient, *, email: str = "", password: str = PASSWORD, name: str = "Ann"
) -> dict[str, Any]:
    """Register a player over HTTP; returns the token pair body."""
    email = email or f"player{next(_counter)}@example.com"
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": password, "display_name": name}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    slug: str = response.json()["type"].removeprefix("urn:homeport:problem:")
    return slug


async def registry_key(state: AppState, *, name: str = "") -> str:
    """A server key for a dedicated server: scopes `registry` and `validate`."""
    return await make_key(state, scopes={"registry", "validate"}, name=name)


async def register_server(client: httpx.AsyncClient, key: str, **fields: Any) -> dict[str, Any]:
    """Register a server over HTTP; returns the response body."""
    body: dict[str, Any] = {"name": "Test server", "port": 7777, "max_players": 16}
    body.update(fields)
    response = await client.post("/v1/servers", json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def fleet_servers(
    state: AppState, client: httpx.AsyncClient, fleet: str, count: int, *, version: str = ""
) -> list[tuple[str, str]]:
    """Ready servers of a stored fleet, as its agent would have started them, each registered
    with its own bound key: (server id, key) pairs. No process runs behind them."""
    from homeport.fleet import keys as fleet_keys
    from homeport.fleet.allocation import new_server
    from homeport.fleet.models import Fleet
    from homeport.fleet.spec import FleetSpec, GameServerState

    made: list[tuple[str, str, int]] = []
    async with unit_of_work(state.sessions) as session:
        stored = await session.get(Fleet, fleet)
        assert stored is not None, f"no fleet {fleet}"
        spec = FleetSpec.model_validate(stored.spec)
        for _ in range(count):
            row = new_server(fleet, spec, state.clock, reason="test")
            row.state, row.port = GameServerState.STARTING.value, 7000 + next(_counter) % 50000
            row.started_at = state.clock.now()
            session.add(row)
            key = await fleet_keys.issue_key(session, state.clock, row, spec)
            made.append((str(row.id), key, row.port))
    for server_id, key, port in made:
        body = {"name": "s", "port": port, "address": "127.0.0.1", "max_players": 8}
        body |= {"state": "ready", "version": version}
        answer = await client.post("/v1/servers", json=body, headers=bearer(key))
        assert answer.status_code == 201, answer.text
        assert answer.json()["server"]["id"] == server_id, "a fleet key registers as its server"
    return [(server_id, key) for server_id, key, _ in made]
