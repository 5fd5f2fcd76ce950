"""Refresh rotation, replay detection, logout and token lifetimes."""

from __future__ import annotations

import httpx

from homeport.clock import FakeClock
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type, register


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_the_refresh_token(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    pair = await register(client)
    clock.advance(5)
    response = await _refresh(client, pair["refresh_token"])
    assert response.status_code == 200
    new = response.json()
    assert new["refresh_token"] != pair["refresh_token"]
    assert new["access_token"] != pair["access_token"]
    assert new["session_id"] == pair["session_id"]
    me = await client.get("/v1/me", headers=bearer(new["access_token"]))
    assert me.status_code == 200


async def test_replaying_a_spent_refresh_token_revokes_the_session(
    client: httpx.AsyncClient, state: AppState
) -> None:
    key = await make_key(state)
    pair = await register(client)
    new = (await _refresh(client, pair["refresh_token"])).json()

    replay = await _refresh(client, pair["refresh_token"])
    assert replay.status_code == 401
    assert problem_type(replay) == "refresh-token-reused"

    # The whole session is gone: the newest refresh token and access token too.
    assert problem_type(await _refresh(client, new["refresh_token"])) == "refresh-token-invalid"
    me = await client.get("/v1/me", headers=bearer(new["access_token"]))
    assert problem_type(me) == "session-revoked"
    validate = await client.post(
        "/v1/validate", headers=bearer(key), json={"player_token": new["access_token"]}
    )
    assert problem_type(validate) == "session-revoked"


async def test_unknown_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    for token in ("hp_rt_unknown", "garbage", "hp_rt_" + "x" * 200):
        response = await _refresh(client, token)
        assert response.status_code == 401
        assert problem_type(response) == "refresh-token-invalid"


async def test_access_token_expires_and_refresh_gives_a_new_one(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    pair = await register(client)
    assert pair["expires_in"] == state.settings.auth_access_ttl
    clock.advance(state.settings.auth_access_ttl)
    expired = await client.get("/v1/me", headers=bearer(pair["access_token"]))
    assert expired.status_code == 401
    assert problem_type(expired) == "token-expired"
    new = (await _refresh(client, pair["refresh_token"])).json()
    assert (await client.get("/v1/me", headers=bearer(new["access_token"]))).status_code == 200


async def test_session_ends_when_refresh_lifetime_passes_unused(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    pair = await register(client)
    clock.advance(state.settings.auth_refresh_ttl + 1)
    assert problem_type(await _refresh(client, pair["refresh_token"])) == "refresh-token-invalid"


async def test_logout_with_bearer_revokes_only_that_session(client: httpx.AsyncClient) -> None:
    pair = await register(client, email="ivy@example.com")
    other = await client.post(
        "/v1/auth/login", json={"email": "ivy@example.com", "password": "correct horse battery"}
    )
    out = await client.post("/v1/auth/logout", headers=bearer(pair["access_token"]))
    assert out.status_code == 204
    assert problem_type(await client.get("/v1/me", headers=bearer(pair["access_token"]))) == (
        "session-revoked"
    )
    assert problem_type(await _refresh(client, pair["refresh_token"])) == "refresh-token-invalid"
    still = await client.get("/v1/me", headers=bearer(other.json()["access_token"]))
    assert still.status_code == 200


async def test_logout_with_refresh_token_in_body(client: httpx.AsyncClient) -> None:
    pair = await register(client)
    out = await client.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert out.status_code == 204
    me = await client.get("/v1/me", headers=bearer(pair["access_token"]))
    assert problem_type(me) == "session-revoked"


async def test_logout_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/logout")
    assert response.status_code == 401
    assert problem_type(response) == "token-missing"


async def test_sessions_and_revocations_survive_a_restart(
    client: httpx.AsyncClient, state: AppState, settings: object, clock: FakeClock
) -> None:
    from homeport.app import create_app
    from homeport.settings import Settings

    assert isinstance(settings, Settings)
    kept = await register(client)
    revoked = await register(client)
    await client.post("/v1/auth/logout", headers=bearer(revoked["access_token"]))
    key = await make_key(state)

    restarted = create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=restarted)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as fresh:
        ok = await fresh.post(
            "/v1/validate", headers=bearer(key), json={"player_token": kept["access_token"]}
        )
        assert ok.status_code == 200
        refused = await fresh.post(
            "/v1/validate", headers=bearer(key), json={"player_token": revoked["access_token"]}
        )
        assert problem_type(refused) == "session-revoked"
    await restarted.state.homeport.close()


async def test_a_spent_refresh_token_cannot_log_the_player_out(client: httpx.AsyncClient) -> None:
    pair = await register(client)
    new = (await _refresh(client, pair["refresh_token"])).json()
    out = await client.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert problem_type(out) == "refresh-token-invalid"
    assert (await client.get("/v1/me", headers=bearer(new["access_token"]))).status_code == 200
