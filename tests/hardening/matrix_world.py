"""The world each cell of the authorization matrix runs in: players, keys of every kind, a
server, a board, documents, an inventory, fleet servers, a ticket, a queue and a match."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from dataclasses import dataclass

import httpx

from homeport.clock import FakeClock
from homeport.db.session import unit_of_work
from homeport.fleet import service as fleet_service
from homeport.identity import service_keys
from homeport.identity.server_keys import SCOPES, KeyKind
from homeport.matchmaking import queue_admin
from homeport.matchmaking.models import Match
from homeport.state import AppState
from tests.factories import PASSWORD, bearer, fleet_servers, make_key

FLEET = {"command": ["./server.x86_64", "--headless"], "scaling": {"buffer": 0}}
CREDENTIALS = ("none", "player", "other", "expired", "unscoped", "scoped", "revoked", "admin")
_counter = itertools.count(1)


@dataclass
class World:
    player: str
    player_token: str
    player_refresh: str
    other_email: str
    other_token: str
    server_id: str
    board: str
    fleet_server: str
    empty_fleet: str
    ticket: str
    queue: str
    match: str
    world: str
    chunk: str


@dataclass(frozen=True)
class Keys:
    expired_token: str
    unscoped: str
    scoped: str
    revoked: str
    admin: str


async def make_keys(client: httpx.AsyncClient, state: AppState, clock: FakeClock) -> Keys:
    device = {"device_id": f"expired-device-{uuid.uuid4().hex}"}
    expired = (await client.post("/v1/auth/device", json=device)).json()["access_token"]
    clock.advance(state.settings.auth_access_ttl + 1)
    await fleet_service.store_configured(state.sessions, state.clock, state.settings)
    await queue_admin.store_configured(state.sessions, state.clock, state.settings)
    revoked = await make_key(state, scopes=set(SCOPES), name="revoked")
    async with unit_of_work(state.sessions) as session:
        await service_keys.revoke_key(session, state.clock, state.identity.caches, name="revoked")
    return Keys(
        expired_token=expired,
        unscoped=await _unscoped_key(state),
        scoped=await make_key(state, scopes=set(SCOPES)),
        revoked=revoked,
        admin=await make_key(state, kind=KeyKind.ADMIN),
    )


async def make_world(
    client: httpx.AsyncClient, state: AppState, keys: Keys, *, saved_world: bool = True
) -> World:
    """A cell's world; `saved_world=False` skips the saved game world only routes under
    `/v1/worlds` need (the chunk is then a hash no world has)."""
    n = next(_counter)
    device = {"device_id": f"matrix-device-{uuid.uuid4().hex}"}
    player = (await client.post("/v1/auth/device", json=device)).json()
    email = f"other{n}-{uuid.uuid4().hex[:8]}@example.com"
    other = await client.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "display_name": "O"}
    )
    pid = player["player"]["id"]
    server = bearer(keys.scoped)
    registered = await client.post(
        "/v1/servers",
        json={"name": "M", "port": 7000 + n % 50000, "max_players": 8},
        headers=server,
    )
    board = f"board-{n}"
    await client.post("/v1/admin/leaderboards", json={"id": board}, headers=bearer(keys.admin))
    await client.post(
        f"/v1/leaderboards/{board}/records", json={"player_id": pid, "score": 1}, headers=server
    )
    await client.put(
        f"/v1/players/{pid}/data/profile/main",
        json={"value": {"xp": 1}, "version": 0},
        headers=server,
    )
    await client.post(
        f"/v1/players/{pid}/inventory/grant",
        json={"items": [{"item": "gold", "quantity": 5}]},
        headers={**server, "Idempotency-Key": "seed"},
    )
    return World(
        player=pid,
        player_token=player["access_token"],
        player_refresh=player["refresh_token"],
        other_email=email,
        other_token=other.json()["access_token"],
        server_id=registered.json()["server_id"],
        board=board,
        fleet_server=(fleet_server := (await fleet_servers(state, client, "arena", 1))[0][0]),
        empty_fleet=await _empty_fleet(client, keys, n),
        ticket=(
            await client.post(
                "/v1/matchmaking/tickets",
                json={"queue": "duel"},
                headers=bearer(player["access_token"]),
            )
        ).json()["id"],
        queue=await _queue(client, keys, n),
        match=await _match(state, [pid, other.json()["player"]["id"]], fleet_server),
        world=f"world-{n}",
        chunk=(await _saved_world(client, keys, f"world-{n}") if saved_world else "0" * 64),
    )


async def _unscoped_key(state: AppState) -> str:
    """A valid server key with no scope at all: every route that takes a key refuses it."""
    async with unit_of_work(state.sessions) as session:
        created = await service_keys.create_key(
            session, state.clock, name="unscoped", kind=KeyKind.SERVER, scopes=frozenset()
        )
    return created.key


async def _saved_world(client: httpx.AsyncClient, keys: Keys, world: str) -> str:
    """A world saved once by the scoped key (its owner and lease holder); its chunk's hash."""
    data = uuid.uuid4().bytes
    digest = hashlib.sha256(data).hexdigest()
    server = bearer(keys.scoped)
    stored = await client.put(
        f"/v1/worlds/{world}/chunks/{digest}",
        content=data,
        headers={**server, "content-type": "application/octet-stream"},
    )
    assert stored.status_code == 201, stored.text
    committed = await client.post(
        f"/v1/worlds/{world}/snapshots", json={"manifest": {"0,0": digest}}, headers=server
    )
    assert committed.status_code == 201, committed.text
    return digest


async def _queue(client: httpx.AsyncClient, keys: Keys, n: int) -> str:
    name = f"queue-{n}"
    made = await client.put(
        f"/v1/admin/matchmaking/queues/{name}", json={"fleet": "arena"}, headers=bearer(keys.admin)
    )
    assert made.status_code == 201, made.text
    return name


async def _match(state: AppState, players: list[str], server: str) -> str:
    """A match played on the world's fleet server, as the matcher would have left it."""
    async with unit_of_work(state.sessions) as session:
        row = Match(
            id=uuid.uuid4(),
            queue="duel",
            state="allocated",
            teams=[[players[0]], [players[1]]],
            tickets=[],
            region=None,
            fleet="arena",
            server_id=uuid.UUID(server),
            address="127.0.0.1",
            port=7000,
            reason="",
            created_at=state.clock.now(),
            allocated_at=state.clock.now(),
        )
        session.add(row)
    return str(row.id)


async def _empty_fleet(client: httpx.AsyncClient, keys: Keys, n: int) -> str:
    name = f"empty-{n}"
    made = await client.put(f"/v1/admin/fleets/{name}", json=FLEET, headers=bearer(keys.admin))
    assert made.status_code == 201, made.text
    return name


def credential(kind: str, world: World, keys: Keys) -> dict[str, str]:
    token = {
        "none": None,
        "player": world.player_token,
        "other": world.other_token,
        "expired": keys.expired_token,
        "unscoped": keys.unscoped,
        "scoped": keys.scoped,
        "revoked": keys.revoked,
        "admin": keys.admin,
    }[kind]
    return {} if token is None else bearer(token)
