"""Registration, login, device accounts, linking, /v1/me and login rate limits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
import pytest

from homeport.app import create_app
from homeport.clock import FakeClock
from homeport.db.session import unit_of_work
from homeport.identity.models import Account
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import PASSWORD, bearer, problem_type, register


async def test_register_returns_tokens_and_stores_an_argon2id_hash(
    client: httpx.AsyncClient, state: AppState
) -> None:
    pair = await register(client, email="  Ann@Example.COM ", name="Ann")
    assert pair["token_type"] == "Bearer"
    assert pair["created"] is True
    assert pair["player"]["email"] == "ann@example.com"
    assert pair["player"]["is_anonymous"] is False
    assert pair["refresh_token"].startswith("hp_rt_")
    async with unit_of_work(state.sessions) as session:
        account = await session.get(Account, uuid.UUID(pair["player"]["id"]))
    assert account is not None
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash


async def test_email_is_unique_case_insensitively(client: httpx.AsyncClient) -> None:
    await register(client, email="bob@example.com")
    response = await client.post(
        "/v1/auth/register",
        json={"email": "BOB@example.com", "password": PASSWORD, "display_name": "Bob"},
    )
    assert response.status_code == 409
    assert problem_type(response) == "email-taken"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"email": "a@example.com", "password": "short", "display_name": "A"}, 422),
        ({"email": "a@example.com", "password": "x" * 200, "display_name": "A"}, 422),
        ({"email": "not-an-email", "password": PASSWORD, "display_name": "A"}, 422),
        ({"email": "a@example.com", "password": PASSWORD, "display_name": ""}, 422),
        ({"email": "a@example.com", "password": PASSWORD, "display_name": "x" * 33}, 422),
        ({"email": "a@example.com", "password": PASSWORD, "display_name": "a\u0000b"}, 422),
        ({"email": "a@example.com", "password": PASSWORD}, 422),
        ({"email": "a@example.com", "password": PASSWORD, "display_name": "A", "admin": True}, 422),
    ],
)
async def test_register_refuses_bad_input_with_problem_json(
    client: httpx.AsyncClient, body: dict[str, object], status: int
) -> None:
    response = await client.post("/v1/auth/register", json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert PASSWORD not in response.text


async def test_login_with_right_password(client: httpx.AsyncClient) -> None:
    await register(client, email="cy@example.com")
    response = await client.post(
        "/v1/auth/login", json={"email": "CY@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["created"] is False


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    await register(client, email="dee@example.com")
    wrong = await client.post(
        "/v1/auth/login", json={"email": "dee@example.com", "password": "wrong password"}
    )
    unknown = await client.post(
        "/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert problem_type(wrong) == problem_type(unknown) == "invalid-credentials"
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_failed_logins_per_account_are_rate_limited(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    await register(client, email="eve@example.com")
    limit = state.settings.auth_login_max_failures
    for _ in range(limit):
        response = await client.post(
            "/v1/auth/login", json={"email": "eve@example.com", "password": "guess guess"}
        )
        assert response.status_code == 401
    blocked = await client.post(
        "/v1/auth/login", json={"email": "eve@example.com", "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert problem_type(blocked) == "rate-limited"
    retry_after = int(blocked.headers["Retry-After"])
    assert 0 < retry_after <= state.settings.auth_login_failure_window
    clock.advance(retry_after)
    ok = await client.post(
        "/v1/auth/login", json={"email": "eve@example.com", "password": PASSWORD}
    )
    assert ok.status_code == 200


async def test_attempts_per_client_address_are_rate_limited(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> None:
    settings = make_settings(auth_address_max_attempts=3)
    app = create_app(settings, clock=clock)

    def make(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 1234))
        return httpx.AsyncClient(transport=transport, base_url="http://t")

    async with make("198.51.100.1") as attacker, make("198.51.100.2") as bystander:
        for i in range(3):
            r = await attacker.post(
                "/v1/auth/login", json={"email": f"u{i}@example.com", "password": "nope nope"}
            )
            assert r.status_code == 401
        blocked = await attacker.post(
            "/v1/auth/login", json={"email": "u9@example.com", "password": "nope nope"}
        )
        assert blocked.status_code == 429
        assert "Retry-After" in blocked.headers
        other = await bystander.post(
            "/v1/auth/login", json={"email": "u9@example.com", "password": "nope nope"}
        )
        assert other.status_code == 401
        clock.advance(settings.auth_address_window)
        again = await attacker.post(
            "/v1/auth/login", json={"email": "u9@example.com", "password": "nope nope"}
        )
        assert again.status_code == 401
    await app.state.homeport.close()


async def test_device_login_creates_an_anonymous_account_once(client: httpx.AsyncClient) -> None:
    device = {"device_id": "device-0123456789abcdef"}
    first = await client.post("/v1/auth/device", json=device)
    assert first.status_code == 201
    assert first.json()["created"] is True
    player = first.json()["player"]
    assert player["is_anonymous"] is True
    assert player["email"] is None
    assert player["display_name"].startswith("Player-")
    second = await client.post("/v1/auth/device", json=device)
    assert second.status_code == 200
    assert second.json()["created"] is False
    assert second.json()["player"]["id"] == player["id"]
    assert second.json()["session_id"] != first.json()["session_id"]


@pytest.mark.parametrize(
    "device_id", ["short", "x" * 129, "has spaces in it 123", "ünïcödé-device-id"]
)
async def test_device_ids_are_checked(client: httpx.AsyncClient, device_id: str) -> None:
    response = await client.post("/v1/auth/device", json={"device_id": device_id})
    assert response.status_code == 422
    assert problem_type(response) == "validation-failed"


async def test_link_email_turns_a_device_account_into_a_full_one(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post("/v1/auth/device", json={"device_id": "device-linkme-000001"})
    token = first.json()["access_token"]
    link = await client.post(
        "/v1/auth/link/email",
        headers=bearer(token),
        json={"email": "Fay@Example.com", "password": PASSWORD},
    )
    assert link.status_code == 200
    assert link.json()["email"] == "fay@example.com"
    assert link.json()["is_anonymous"] is False
    login = await client.post(
        "/v1/auth/login", json={"email": "fay@example.com", "password": PASSWORD}
    )
    assert login.json()["player"]["id"] == first.json()["player"]["id"]
    again = await client.post(
        "/v1/auth/link/email",
        headers=bearer(token),
        json={"email": "other@example.com", "password": PASSWORD},
    )
    assert again.status_code == 409
    assert problem_type(again) == "already-linked"


async def test_link_email_refuses_an_email_in_use(client: httpx.AsyncClient) -> None:
    await register(client, email="gus@example.com")
    anon = await client.post("/v1/auth/device", json={"device_id": "device-linkme-000002"})
    response = await client.post(
        "/v1/auth/link/email",
        headers=bearer(anon.json()["access_token"]),
        json={"email": "GUS@example.com", "password": PASSWORD},
    )
    assert response.status_code == 409
    assert problem_type(response) == "email-taken"


async def test_me_needs_a_valid_token(client: httpx.AsyncClient) -> None:
    pair = await register(client, name="Hal")
    me = await client.get("/v1/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json()["display_name"] == "Hal"
    missing = await client.get("/v1/me")
    assert missing.status_code == 401
    assert problem_type(missing) == "token-missing"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    bad = await client.get("/v1/me", headers=bearer("abc.def.ghi"))
    assert problem_type(bad) == "token-invalid"


async def test_concurrent_wrong_passwords_cannot_slip_under_the_account_limit(
    client: httpx.AsyncClient, state: AppState
) -> None:
    await register(client, email="zed@example.com")
    limit = state.settings.auth_login_max_failures
    guesses = [
        client.post("/v1/auth/login", json={"email": "zed@example.com", "password": f"guess {i}!"})
        for i in range(limit * 3)
    ]
    statuses = sorted(r.status_code for r in await asyncio.gather(*guesses))
    assert statuses.count(401) <= limit
    assert statuses.count(429) >= limit * 2


async def test_every_forwarded_for_line_is_read(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> None:
    """A proxy that adds its own header line must not let the client's forged line win."""
    settings = make_settings(trusted_proxies=["10.0.0.0/8"], auth_address_max_attempts=2)
    app = create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as proxy:
        statuses = []
        for i in range(4):
            headers = [("X-Forwarded-For", f"203.0.113.{i}"), ("X-Forwarded-For", "198.51.100.7")]
            r = await proxy.post(
                "/v1/auth/device", headers=headers, json={"device_id": f"device-xff-{i:010d}"}
            )
            statuses.append(r.status_code)
    assert statuses == [201, 201, 429, 429]
    await app.state.homeport.close()
