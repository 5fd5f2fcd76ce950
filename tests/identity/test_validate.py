"""`POST /v1/validate`: the dedicated server's question, and every way the answer is no."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import event

from homeport.app import create_app
from homeport.clock import FakeClock
from homeport.db.engine import create_sessionmaker
from homeport.db.session import unit_of_work
from homeport.identity import service_keys
from homeport.identity.context import build_identity
from homeport.identity.models import Account
from homeport.identity.server_keys import KeyKind
from homeport.identity.service_accounts import set_banned
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type, register

Connected = tuple[str, dict[str, Any]]


@pytest.fixture
async def connected(client: httpx.AsyncClient, state: AppState) -> Connected:
    """A server key and a player whose token validates right now."""
    key = await make_key(state)
    pair = await register(client)
    assert (await _validate(client, key, pair["access_token"])).status_code == 200
    return key, pair


def _resigned(state: AppState, token: str, **changes: Any) -> str:
    """The token with some claims changed, signed again with the real key (not forged)."""
    claims = jwt.decode(token, options={"verify_signature": False}) | changes
    signing = state.identity.ring.signing_key
    return jwt.encode(claims, signing.private_key, algorithm="EdDSA", headers={"kid": signing.kid})


async def _validate(client: httpx.AsyncClient, key: str, token: str) -> httpx.Response:
    return await client.post("/v1/validate", headers=bearer(key), json={"player_token": token})


async def test_seed_request_without_content_type_validates(
    client: httpx.AsyncClient, state: AppState
) -> None:
    """Exactly what Godot's HTTPRequest sends: only Authorization, a JSON body, no Content-Type."""
    key = await make_key(state)
    pair = await register(client, name="Ann")
    body = ('{"player_token":"' + pair["access_token"] + '"}').encode()
    request = client.build_request(
        "POST", "/v1/validate", headers={"Authorization": f"Bearer {key}"}, content=body
    )
    assert "content-type" not in request.headers
    response = await client.send(request)
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["player"]["id"] == pair["player"]["id"]
    assert got["player"]["display_name"] == "Ann"
    assert got["player"]["created_at"].endswith("Z")
    assert "email" not in got["player"]
    assert got["session"]["id"] == pair["session_id"]
    assert got["session"]["expires_at"] == pair["expires_at"].replace("+00:00", "Z")
    assert got["data"] == {"profile": {}}  # the spawn collections, empty for a new player


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [("application/json", 200), ("application/json; charset=utf-8", 200), ("text/plain", 415)],
)
async def test_declared_content_types(
    client: httpx.AsyncClient, state: AppState, content_type: str, expected: int
) -> None:
    key = await make_key(state)
    pair = await register(client)
    body = ('{"player_token":"' + pair["access_token"] + '"}').encode()
    headers = {**bearer(key), "Content-Type": content_type}
    response = await client.post("/v1/validate", headers=headers, content=body)
    assert response.status_code == expected
    if expected == 415:
        assert problem_type(response) == "unsupported-media-type"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Basic abc", "Bearer hp_sk_short", "Bearer hp_sk_" + "A" * 40],
)
async def test_missing_or_unknown_server_key_is_401(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    pair = await register(client)
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.post(
        "/v1/validate", headers=headers, json={"player_token": pair["access_token"]}
    )
    assert response.status_code == 401
    assert problem_type(response) == "server-key-invalid"


async def test_key_with_tampered_secret_is_401(client: httpx.AsyncClient, state: AppState) -> None:
    key = await make_key(state)
    pair = await register(client)
    forged = key[:-1] + ("a" if key[-1] != "a" else "b")
    response = await _validate(client, forged, pair["access_token"])
    assert problem_type(response) == "server-key-invalid"


async def test_key_without_validate_scope_is_403(
    client: httpx.AsyncClient, state: AppState
) -> None:
    key = await make_key(state, scopes={"registry"})
    pair = await register(client)
    response = await _validate(client, key, pair["access_token"])
    assert response.status_code == 403
    assert problem_type(response) == "missing-scope"
    assert response.json()["required_scope"] == "validate"


async def test_admin_key_may_validate(client: httpx.AsyncClient, state: AppState) -> None:
    key = await make_key(state, kind=KeyKind.ADMIN)
    pair = await register(client)
    assert (await _validate(client, key, pair["access_token"])).status_code == 200


async def test_key_revoked_in_this_process_is_refused_at_once(
    client: httpx.AsyncClient, state: AppState
) -> None:
    key = await make_key(state, name="dedi")
    pair = await register(client)
    assert (await _validate(client, key, pair["access_token"])).status_code == 200
    async with unit_of_work(state.sessions) as session:
        await service_keys.revoke_key(session, state.clock, state.identity.caches, name="dedi")
    response = await _validate(client, key, pair["access_token"])
    assert response.status_code == 401
    assert problem_type(response) == "server-key-invalid"


async def test_key_revoked_elsewhere_is_refused_within_cache_ttl(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    """A revoke from the CLI or another replica cannot clear this process's cache."""
    key = await make_key(state, name="dedi")
    pair = await register(client)
    assert (await _validate(client, key, pair["access_token"])).status_code == 200
    other_process = create_sessionmaker(state.engine)
    async with unit_of_work(other_process) as session:
        await service_keys.revoke_key(session, clock, None, name="dedi")
    clock.advance(state.settings.auth_cache_ttl + 0.01)
    response = await _validate(client, key, pair["access_token"])
    assert problem_type(response) == "server-key-invalid"


async def test_tampered_token_is_token_invalid(client: httpx.AsyncClient, state: AppState) -> None:
    key = await make_key(state)
    pair = await register(client)
    header, payload, signature = pair["access_token"].split(".")
    other = await register(client)
    _, other_payload, _ = other["access_token"].split(".")
    for forged in (
        f"{header}.{other_payload}.{signature}",
        f"{header}.{payload}.{signature[:-4]}AAAA",
        "not-a-jwt",
        "",
    ):
        response = await client.post(
            "/v1/validate", headers=bearer(key), json={"player_token": forged}
        )
        assert response.status_code in (401, 422)
        if response.status_code == 401:
            assert problem_type(response) == "token-invalid"


async def test_wrong_audience_has_its_own_type(client: httpx.AsyncClient, state: AppState) -> None:
    key = await make_key(state)
    pair = await register(client)
    token = _resigned(state, pair["access_token"], aud="another-game")
    response = await _validate(client, key, token)
    assert response.status_code == 401
    assert problem_type(response) == "token-wrong-audience"


async def test_expired_token_is_refused(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock, connected: Connected
) -> None:
    key, pair = connected
    clock.advance(pair["expires_in"] - 1)
    assert (await _validate(client, key, pair["access_token"])).status_code == 200
    clock.advance(1)
    response = await _validate(client, key, pair["access_token"])
    assert response.status_code == 401
    assert problem_type(response) == "token-expired"


async def test_logged_out_session_is_refused_at_once(
    client: httpx.AsyncClient, state: AppState, connected: Connected
) -> None:
    key, pair = connected
    logout = await client.post("/v1/auth/logout", headers=bearer(pair["access_token"]))
    assert logout.status_code == 204
    response = await _validate(client, key, pair["access_token"])
    assert response.status_code == 401
    assert problem_type(response) == "session-revoked"


async def test_banned_player_is_refused_and_unban_restores_nothing_revoked(
    client: httpx.AsyncClient, state: AppState
) -> None:
    key = await make_key(state)
    admin = await make_key(state, kind=KeyKind.ADMIN)
    pair = await register(client)
    player_id = pair["player"]["id"]
    assert (await _validate(client, key, pair["access_token"])).status_code == 200

    ban = await client.post(
        f"/v1/admin/players/{player_id}/ban", headers=bearer(admin), json={"reason": "cheating"}
    )
    assert ban.status_code == 200
    assert ban.json()["banned"] is True
    response = await _validate(client, key, pair["access_token"])
    assert response.status_code == 401
    # Banning revoked the session as well; the refusal names the revocation.
    assert problem_type(response) in ("session-revoked", "player-banned")

    login = await client.post(
        "/v1/auth/login",
        json={"email": pair["player"]["email"], "password": "correct horse battery"},
    )
    assert problem_type(login) == "player-banned"

    unban = await client.post(f"/v1/admin/players/{player_id}/unban", headers=bearer(admin))
    assert unban.json()["banned"] is False
    assert (await _validate(client, key, pair["access_token"])).status_code == 401
    again = await client.post(
        "/v1/auth/login",
        json={"email": pair["player"]["email"], "password": "correct horse battery"},
    )
    assert again.status_code == 200
    assert (await _validate(client, key, again.json()["access_token"])).status_code == 200


async def test_ban_by_another_process_reaches_validate_within_cache_ttl(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock, connected: Connected
) -> None:
    """Another replica bans: its auth event reaches this process's cache within the TTL."""
    key, pair = connected
    other = build_identity(state.settings, clock)
    async with unit_of_work(create_sessionmaker(state.engine)) as session:
        await set_banned(session, other, account_id=uuid.UUID(pair["player"]["id"]), banned=True)
    assert (await _validate(client, key, pair["access_token"])).status_code == 200  # cached
    clock.advance(state.settings.auth_cache_ttl)
    response = await _validate(client, key, pair["access_token"])
    assert problem_type(response) in ("session-revoked", "player-banned")


async def test_change_made_behind_homeports_back_is_seen_within_max_age(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock, connected: Connected
) -> None:
    """A ban written straight into the database (no auth event) still takes effect, later."""
    key, pair = connected
    async with unit_of_work(create_sessionmaker(state.engine)) as session:
        account = await session.get(Account, uuid.UUID(pair["player"]["id"]))
        assert account is not None
        account.banned = True
    clock.advance(state.settings.auth_cache_ttl)
    assert (await _validate(client, key, pair["access_token"])).status_code == 200
    clock.advance(state.settings.auth_cache_max_age)
    assert problem_type(await _validate(client, key, pair["access_token"])) == "player-banned"


async def test_validate_without_caches_sees_every_change_at_once(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> None:
    settings = make_settings(auth_cache_ttl=0)
    app = create_app(settings, clock=clock)
    state: AppState = app.state.homeport
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        key = await make_key(state, name="dedi")
        pair = await register(client)
        assert (await _validate(client, key, pair["access_token"])).status_code == 200
        async with unit_of_work(create_sessionmaker(state.engine)) as session:
            account = await session.get(Account, uuid.UUID(pair["player"]["id"]))
            assert account is not None
            account.banned = True
        assert problem_type(await _validate(client, key, pair["access_token"])) == "player-banned"
        async with unit_of_work(create_sessionmaker(state.engine)) as session:
            await service_keys.revoke_key(session, clock, None, name="dedi")
        assert problem_type(await _validate(client, key, pair["access_token"])) == (
            "server-key-invalid"
        )
    await state.close()


@pytest.mark.parametrize("path", ["/v1/admin/players/{id}", "/v1/admin/players/{id}/unban"])
async def test_admin_endpoints_refuse_server_keys(
    client: httpx.AsyncClient, state: AppState, path: str
) -> None:
    key = await make_key(state, scopes={"validate", "players"})
    pair = await register(client)
    url = path.format(id=pair["player"]["id"])
    method = client.get if "unban" not in path else client.post
    response = await method(url, headers=bearer(key))
    assert response.status_code == 403
    assert problem_type(response) == "admin-key-required"


async def test_token_issued_in_the_future_is_invalid(
    client: httpx.AsyncClient, state: AppState
) -> None:
    key = await make_key(state)
    pair = await register(client)
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    hour = int(timedelta(hours=1).total_seconds())
    token = _resigned(
        state, pair["access_token"], iat=claims["iat"] + hour, exp=claims["exp"] + hour
    )
    assert problem_type(await _validate(client, key, token)) == "token-invalid"


async def test_unknown_keys_are_remembered_briefly(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    """Made-up keys cost one database look-up per lookup id, not one per request."""
    pair = await register(client)
    made_up = "hp_sk_" + "Z" * 40
    queries = 0

    def count(*_: object) -> None:
        nonlocal queries
        queries += 1

    event.listen(state.engine.sync_engine, "before_cursor_execute", count)
    try:
        await _validate(client, made_up, pair["access_token"])
        first = queries
        for _ in range(5):
            response = await _validate(client, made_up, pair["access_token"])
            assert problem_type(response) == "server-key-invalid"
        assert queries == first
        clock.advance(10)
        await _validate(client, made_up, pair["access_token"])
        assert queries > first
    finally:
        event.remove(state.engine.sync_engine, "before_cursor_execute", count)
