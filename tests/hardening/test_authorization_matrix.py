"""Every route, called with every kind of credential, answers exactly as the table says.

Each cell runs against a world of its own (players, a server, a board, a document, an
inventory), so a call that succeeds and changes things (a delete, an erasure) cannot decide the
next cell's outcome. A route the app serves without a row here fails the test: a new endpoint
must say who may call it. The admin dashboard's rows (cookie sessions, not API credentials) are
in `dashboard_matrix`.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from homeport.clock import FakeClock
from homeport.state import AppState
from tests.factories import PASSWORD
from tests.hardening.dashboard_matrix import (
    DASHBOARD_MATRIX,
    run_dashboard_matrix,
    undocumented_routes,
)
from tests.hardening.matrix_world import (
    CREDENTIALS,
    FLEET,
    World,
    credential,
    make_keys,
    make_world,
)

Call = Callable[[World], tuple[str, dict[str, Any] | bytes | None, dict[str, str]]]
"""Given the cell's world: the path, the JSON body (bytes: a raw body; None: no body) and any
extra headers."""


def _new_email(_: World) -> tuple[str, dict[str, Any] | bytes | None, dict[str, str]]:
    body = {"email": f"n{uuid.uuid4().hex}@example.com", "password": PASSWORD, "display_name": "N"}
    return "/v1/auth/register", body, {}


def _path(
    template: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Call:
    def call(w: World) -> tuple[str, dict[str, Any] | bytes | None, dict[str, str]]:
        return template.format(w=w), body, headers or {}

    return call


# (method, route as the OpenAPI document names it) -> (a valid call, the status per credential
# in the order of CREDENTIALS).
PUBLIC_200 = (200,) * 8
KEY_ONLY_401 = (401, 401, 401, 401)  # none, player, other player, expired token: not a key
READS = (401, 200, 200, 401, 403, 200, 401, 200)  # players and keys with the scope
SERVER_WRITE = (401, 403, 403, 401, 403, 200, 401, 200)  # a key's scope, never a player
FLEET_CALLS = (*KEY_ONLY_401, 403, 200, 401, 200)  # keys with the scope `fleet`
ADMIN = (*KEY_ONLY_401, 403, 403, 401, 200)
PLAYER_OWN = (401, 200, 404, 401, 401, 401, 401, 401)  # the ticket's player only
OWNER_READ = (401, 200, 403, 401, 403, 200, 401, 200)  # the player, and keys with the scope
SCOPED_KEY = (*KEY_ONLY_401, 403, 200, 401, 200)
LEASED = (*KEY_ONLY_401, 403, 200, 401, 409)  # the scoped key saved the world: it holds the lease
NEW_CHUNK = os.urandom(64)


def _new_chunk(w: World) -> tuple[str, dict[str, Any] | bytes | None, dict[str, str]]:
    digest = hashlib.sha256(NEW_CHUNK).hexdigest()
    octets = {"content-type": "application/octet-stream"}
    return f"/v1/worlds/{w.world}/chunks/{digest}", NEW_CHUNK, octets


MATRIX: dict[tuple[str, str], tuple[Call, tuple[int, ...]]] = {
    ("GET", "/healthz"): (_path("/healthz"), PUBLIC_200),
    ("GET", "/readyz"): (_path("/readyz"), PUBLIC_200),
    ("GET", "/metrics"): (_path("/metrics"), PUBLIC_200),  # no metrics token set here
    ("GET", "/.well-known/jwks.json"): (_path("/.well-known/jwks.json"), PUBLIC_200),
    ("POST", "/v1/auth/register"): (_new_email, (201,) * 8),
    ("POST", "/v1/auth/login"): (
        lambda w: ("/v1/auth/login", {"email": w.other_email, "password": PASSWORD}, {}),
        PUBLIC_200,
    ),
    ("POST", "/v1/auth/device"): (
        lambda w: ("/v1/auth/device", {"device_id": f"d-{uuid.uuid4().hex}"}, {}),
        (201,) * 8,
    ),
    ("POST", "/v1/auth/link/email"): (
        lambda w: (
            "/v1/auth/link/email",
            {"email": f"l{uuid.uuid4().hex}@example.com", "password": PASSWORD},
            {},
        ),
        (401, 200, 409, 401, 401, 401, 401, 401),
    ),
    ("POST", "/v1/auth/refresh"): (
        lambda w: ("/v1/auth/refresh", {"refresh_token": w.player_refresh}, {}),
        PUBLIC_200,
    ),
    ("POST", "/v1/auth/logout"): (
        _path("/v1/auth/logout"),
        (401, 204, 204, 401, 401, 401, 401, 401),
    ),
    ("GET", "/v1/me"): (_path("/v1/me"), (401, 200, 200, 401, 401, 401, 401, 401)),
    ("GET", "/v1/admin/players/{player_id}"): (
        _path("/v1/admin/players/{w.player}"),
        (*KEY_ONLY_401, 403, 403, 401, 200),
    ),
    ("DELETE", "/v1/admin/players/{player_id}"): (
        _path("/v1/admin/players/{w.player}"),
        (*KEY_ONLY_401, 403, 403, 401, 204),
    ),
    ("POST", "/v1/admin/players/{player_id}/ban"): (
        _path("/v1/admin/players/{w.player}/ban"),
        (*KEY_ONLY_401, 403, 403, 401, 200),
    ),
    ("POST", "/v1/admin/players/{player_id}/unban"): (
        _path("/v1/admin/players/{w.player}/unban"),
        (*KEY_ONLY_401, 403, 403, 401, 200),
    ),
    ("POST", "/v1/servers"): (
        lambda w: ("/v1/servers", {"name": "N", "port": 9, "max_players": 4}, {}),
        (*KEY_ONLY_401, 403, 201, 401, 201),
    ),
    ("GET", "/v1/servers"): (_path("/v1/servers"), PUBLIC_200),
    ("GET", "/v1/servers/{server_id}"): (_path("/v1/servers/{w.server_id}"), PUBLIC_200),
    ("DELETE", "/v1/servers/{server_id}"): (
        _path("/v1/servers/{w.server_id}"),
        (*KEY_ONLY_401, 403, 204, 401, 204),
    ),
    ("POST", "/v1/servers/{server_id}/join-ticket"): (
        _path("/v1/servers/{w.server_id}/join-ticket"),
        (401, 201, 201, 401, 401, 401, 401, 401),
    ),
    ("PUT", "/v1/servers/{server_id}/heartbeat"): (
        _path("/v1/servers/{w.server_id}/heartbeat", {"players": 1}),
        (*KEY_ONLY_401, 403, 200, 401, 200),
    ),
    ("POST", "/v1/validate"): (
        lambda w: ("/v1/validate", {"player_token": w.player_token}, {}),
        (*KEY_ONLY_401, 403, 200, 401, 200),
    ),
    ("GET", "/v1/players/{player}/data"): (_path("/v1/players/{w.player}/data"), READS),
    ("POST", "/v1/players/{player}/data"): (
        _path(
            "/v1/players/{w.player}/data",
            {"writes": [{"collection": "progress", "key": "q", "value": {}, "version": 0}]},
        ),
        SERVER_WRITE,
    ),
    ("GET", "/v1/players/{player}/data/{collection}"): (
        _path("/v1/players/{w.player}/data/profile"),
        OWNER_READ,
    ),
    ("GET", "/v1/players/{player}/data/{collection}/{key}"): (
        _path("/v1/players/{w.player}/data/profile/main"),
        OWNER_READ,
    ),
    ("PUT", "/v1/players/{player}/data/{collection}/{key}"): (
        _path("/v1/players/{w.player}/data/profile/main", {"value": {"xp": 2}, "version": 1}),
        SERVER_WRITE,
    ),
    ("PATCH", "/v1/players/{player}/data/{collection}/{key}"): (
        _path("/v1/players/{w.player}/data/profile/main", {"xp": 3}, headers={"If-Match": "1"}),
        SERVER_WRITE,
    ),
    ("DELETE", "/v1/players/{player}/data/{collection}/{key}"): (
        _path("/v1/players/{w.player}/data/profile/main", headers={"If-Match": "1"}),
        (401, 403, 403, 401, 403, 204, 401, 204),
    ),
    ("POST", "/v1/players/{player}/inventory/{kind}"): (
        _path(
            "/v1/players/{w.player}/inventory/consume",
            {"items": [{"item": "gold", "quantity": 1}]},
            headers={"Idempotency-Key": "matrix"},
        ),
        SERVER_WRITE,
    ),
    ("GET", "/v1/players/{player}/inventory"): (
        _path("/v1/players/{w.player}/inventory"),
        OWNER_READ,
    ),
    ("GET", "/v1/players/{player}/inventory/ledger"): (
        _path("/v1/players/{w.player}/inventory/ledger"),
        OWNER_READ,
    ),
    ("POST", "/v1/admin/leaderboards"): (
        lambda w: ("/v1/admin/leaderboards", {"id": f"new-{uuid.uuid4().hex[:12]}"}, {}),
        (*KEY_ONLY_401, 403, 403, 401, 201),
    ),
    ("DELETE", "/v1/admin/leaderboards/{board_id}"): (
        _path("/v1/admin/leaderboards/{w.board}"),
        (*KEY_ONLY_401, 403, 403, 401, 204),
    ),
    ("GET", "/v1/leaderboards"): (_path("/v1/leaderboards"), READS),
    ("GET", "/v1/leaderboards/{board_id}"): (_path("/v1/leaderboards/{w.board}"), READS),
    ("GET", "/v1/leaderboards/{board_id}/periods"): (
        _path("/v1/leaderboards/{w.board}/periods"),
        READS,
    ),
    ("GET", "/v1/leaderboards/{board_id}/records"): (
        _path("/v1/leaderboards/{w.board}/records"),
        READS,
    ),
    ("GET", "/v1/leaderboards/{board_id}/records/{player_id}"): (
        _path("/v1/leaderboards/{w.board}/records/{w.player}"),
        READS,
    ),
    ("POST", "/v1/leaderboards/{board_id}/records"): (
        lambda w: (f"/v1/leaderboards/{w.board}/records", {"player_id": w.player, "score": 9}, {}),
        (*KEY_ONLY_401, 403, 200, 401, 200),
    ),
    ("GET", "/v1/fleets"): (_path("/v1/fleets"), FLEET_CALLS),
    ("GET", "/v1/fleets/{fleet}"): (_path("/v1/fleets/arena"), FLEET_CALLS),
    ("GET", "/v1/fleets/{fleet}/servers"): (_path("/v1/fleets/arena/servers"), FLEET_CALLS),
    ("GET", "/v1/fleets/{fleet}/servers/{server_id}"): (
        _path("/v1/fleets/arena/servers/{w.fleet_server}"),
        FLEET_CALLS,
    ),
    ("POST", "/v1/fleets/{fleet}/servers/{server_id}/drain"): (
        _path("/v1/fleets/arena/servers/{w.fleet_server}/drain"),
        (*KEY_ONLY_401, 403, 202, 401, 202),
    ),
    ("POST", "/v1/fleets/{fleet}/allocate"): (
        _path("/v1/fleets/arena/allocate", {"wait": 0}),
        FLEET_CALLS,
    ),
    ("PUT", "/v1/admin/fleets/{fleet}"): (_path("/v1/admin/fleets/{w.empty_fleet}", FLEET), ADMIN),
    ("DELETE", "/v1/admin/fleets/{fleet}"): (
        _path("/v1/admin/fleets/{w.empty_fleet}"),
        (*KEY_ONLY_401, 403, 403, 401, 204),
    ),
    ("POST", "/v1/matchmaking/tickets"): (
        _path("/v1/matchmaking/tickets", {"queue": "duel"}),
        (401, 409, 201, 401, 401, 401, 401, 401),  # the player is searching already
    ),
    ("GET", "/v1/matchmaking/tickets/{ticket_id}"): (
        _path("/v1/matchmaking/tickets/{w.ticket}"),
        PLAYER_OWN,
    ),
    ("DELETE", "/v1/matchmaking/tickets/{ticket_id}"): (
        _path("/v1/matchmaking/tickets/{w.ticket}"),
        PLAYER_OWN,
    ),
    ("GET", "/v1/matchmaking/queues"): (
        _path("/v1/matchmaking/queues"),
        (401, 200, 200, 401, 200, 200, 401, 200),
    ),
    ("PUT", "/v1/admin/matchmaking/queues/{queue}"): (
        lambda w: (f"/v1/admin/matchmaking/queues/new-{w.queue}", {"fleet": "arena"}, {}),
        (*KEY_ONLY_401, 403, 403, 401, 201),
    ),
    ("DELETE", "/v1/admin/matchmaking/queues/{queue}"): (
        _path("/v1/admin/matchmaking/queues/{w.queue}"),
        (*KEY_ONLY_401, 403, 403, 401, 204),
    ),
    ("GET", "/v1/matches/{match_id}"): (
        _path("/v1/matches/{w.match}"),
        (401, 200, 200, 401, 404, 200, 401, 200),
    ),
    ("POST", "/v1/matches/{match_id}/result"): (
        _path("/v1/matches/{w.match}/result", {"ranks": [1, 2]}),
        (401, 403, 403, 401, 403, 200, 401, 200),
    ),
    ("POST", "/v1/admin/fleets/{fleet}/scale"): (
        _path("/v1/admin/fleets/{w.empty_fleet}/scale", {"replicas": 2}),
        ADMIN,
    ),
    ("GET", "/v1/worlds"): (_path("/v1/worlds"), ADMIN),
    ("PUT", "/v1/worlds/{world}"): (
        _path("/v1/worlds/new-{w.world}", {}),
        (*KEY_ONLY_401, 403, 201, 401, 201),
    ),
    ("GET", "/v1/worlds/{world}"): (_path("/v1/worlds/{w.world}"), SCOPED_KEY),
    ("DELETE", "/v1/worlds/{world}"): (
        _path("/v1/worlds/{w.world}"),
        (*KEY_ONLY_401, 403, 403, 401, 204),
    ),
    ("POST", "/v1/worlds/{world}/lease"): (_path("/v1/worlds/{w.world}/lease"), LEASED),
    ("DELETE", "/v1/worlds/{world}/lease"): (
        _path("/v1/worlds/{w.world}/lease"),
        (*KEY_ONLY_401, 403, 204, 401, 204),
    ),
    ("POST", "/v1/worlds/{world}/chunks/missing"): (
        lambda w: (f"/v1/worlds/{w.world}/chunks/missing", {"hashes": [w.chunk]}, {}),
        LEASED,
    ),
    ("PUT", "/v1/worlds/{world}/chunks/{sha256}"): (
        _new_chunk,
        (*KEY_ONLY_401, 403, 201, 401, 409),
    ),
    ("GET", "/v1/worlds/{world}/chunks/{sha256}"): (
        _path("/v1/worlds/{w.world}/chunks/{w.chunk}"),
        SCOPED_KEY,
    ),
    ("HEAD", "/v1/worlds/{world}/chunks/{sha256}"): (
        _path("/v1/worlds/{w.world}/chunks/{w.chunk}"),
        SCOPED_KEY,
    ),
    ("POST", "/v1/worlds/{world}/snapshots"): (
        lambda w: (f"/v1/worlds/{w.world}/snapshots", {"manifest": {"a": w.chunk}}, {}),
        (*KEY_ONLY_401, 403, 201, 401, 409),
    ),
    ("GET", "/v1/worlds/{world}/snapshots"): (_path("/v1/worlds/{w.world}/snapshots"), SCOPED_KEY),
    ("GET", "/v1/worlds/{world}/snapshots/{seq}"): (
        _path("/v1/worlds/{w.world}/snapshots/1"),
        SCOPED_KEY,
    ),
}


def _served_routes(app: FastAPI) -> set[tuple[str, str]]:
    schema = app.openapi()
    return {(method.upper(), path) for path, item in schema["paths"].items() for method in item}


def test_every_route_has_a_row(app: FastAPI) -> None:
    served = _served_routes(app)
    assert served - MATRIX.keys() == set(), "routes without a row in the authorization matrix"
    assert MATRIX.keys() - served == set(), "rows for routes the app does not serve"
    hidden = undocumented_routes(app.routes)
    assert hidden - DASHBOARD_MATRIX.keys() == set(), "routes without a row in the matrix"
    assert DASHBOARD_MATRIX.keys() - hidden == set(), "dashboard rows for routes not served"


@pytest.fixture
def settings(make_settings: Callable[..., Any]) -> Any:
    # A cell makes a handful of players; the per-address limit is not what is tested here.
    return make_settings(
        auth_address_max_attempts=100_000,
        fleets={"arena": FLEET},
        fleet_admin_commands=True,
        matchmaking_queues={"duel": {"fleet": "arena", "teams": 2, "team_size": 1}},
    )


async def test_authorization_matrix(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    keys = await make_keys(client, state, clock)
    wrong: list[str] = []
    for (method, route), (call, expected) in MATRIX.items():
        for kind, status in zip(CREDENTIALS, expected, strict=True):
            world = await make_world(
                client, state, keys, saved_world=route.startswith("/v1/worlds")
            )
            path, body, extra = call(world)
            headers = {**credential(kind, world, keys), **extra}
            if isinstance(body, bytes):
                response = await client.request(method, path, content=body, headers=headers)
            else:
                response = await client.request(method, path, json=body, headers=headers)
            if response.status_code != status:
                wrong.append(
                    f"{method} {route} as {kind}: {response.status_code}, expected {status}"
                    f" ({response.text[:120]})"
                )
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json", path
    assert not wrong, "\n".join(wrong)


async def test_dashboard_authorization_matrix(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    wrong = await run_dashboard_matrix(client, state, await make_keys(client, state, clock))
    assert not wrong, "\n".join(wrong)
