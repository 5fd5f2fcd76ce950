"""Dashboard logins: admin keys only, signed cookies that expire and die with their key,
rate-limited failures, and CSRF refusals for every state-changing request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from homeport.app import create_app
from homeport.clock import FakeClock
from homeport.dashboard.auth import COOKIE
from homeport.db.session import unit_of_work
from homeport.identity import service_keys
from homeport.identity.server_keys import KeyKind
from homeport.settings import Settings
from homeport.state import AppState
from tests.dashboard.helpers import ORIGIN, login
from tests.factories import bearer, make_key, problem_type


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(auth_login_max_failures=3, dashboard_session_ttl=3600)


async def test_login_sets_a_strict_http_only_cookie_and_logout_ends_it(
    client: httpx.AsyncClient, state: AppState
) -> None:
    admin = await make_key(state, kind=KeyKind.ADMIN, name="ops")
    answer = await client.post("/admin/login", data={"key": admin}, headers={"Origin": ORIGIN})
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain HTTP here; HTTPS requests get Secure
    assert admin not in cookie
    overview = await client.get("/admin")
    assert overview.status_code == 200
    assert "key ops" in overview.text
    csrf = await login(client, admin)
    out = await client.post("/admin/logout", data={"csrf": csrf})
    assert (out.status_code, out.headers["location"]) == (303, "/admin/login")
    assert COOKIE not in client.cookies
    assert (await client.get("/admin")).status_code == 303


async def test_https_requests_get_a_secure_cookie(app: Any, state: AppState) -> None:
    admin = await make_key(state, kind=KeyKind.ADMIN)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://homeport.test") as c:
        answer = await c.post("/admin/login", data={"key": admin})
    assert answer.status_code == 303
    assert "Secure" in answer.headers["set-cookie"]


async def test_a_trusted_proxy_that_ended_tls_gets_a_secure_cookie(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> None:
    """Only a trusted proxy's `X-Forwarded-Proto` counts; anyone else's is ignored."""
    app = create_app(make_settings(trusted_proxies=["10.0.0.0/8"]), clock=clock)
    state: AppState = app.state.homeport
    admin = await make_key(state, kind=KeyKind.ADMIN)
    https = {"X-Forwarded-Proto": "https", "Origin": "https://homeport.test"}
    try:
        for peer, secure in (("10.1.2.3", True), ("203.0.113.9", False)):
            transport = httpx.ASGITransport(app=app, client=(peer, 40000))
            async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as c:
                answer = await c.post("/admin/login", data={"key": admin}, headers=https)
            assert answer.status_code == 303, answer.text
            assert ("Secure" in answer.headers["set-cookie"]) is secure, peer
    finally:
        await state.close()


async def test_unauthenticated_pages_redirect_to_the_login(client: httpx.AsyncClient) -> None:
    for path in ("/admin", "/admin/servers", "/admin/players", "/admin/fleets"):
        answer = await client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/admin/login"), path
    login_page = await client.get("/admin/login")
    assert login_page.status_code == 200
    assert "default-src 'none'" in login_page.headers["content-security-policy"]


async def test_bad_keys_are_refused_with_the_form_again(
    client: httpx.AsyncClient, state: AppState
) -> None:
    server_key = await make_key(state, scopes={"registry"})
    wrong = await client.post("/admin/login", data={"key": "hp_admin_nonsense"})
    assert wrong.status_code == 401
    assert "not a valid admin key" in wrong.text
    assert COOKIE not in client.cookies
    not_admin = await client.post("/admin/login", data={"key": server_key})
    assert not_admin.status_code == 403
    assert COOKIE not in client.cookies


async def test_failed_logins_are_rate_limited_per_address(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    admin = await make_key(state, kind=KeyKind.ADMIN)
    for _ in range(3):
        assert (await client.post("/admin/login", data={"key": "hp_admin_x"})).status_code == 401
    limited = await client.post("/admin/login", data={"key": admin})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert COOKIE not in client.cookies
    clock.advance(state.settings.auth_login_failure_window + 1)
    assert (await client.post("/admin/login", data={"key": admin})).status_code == 303


async def test_sessions_expire(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    await login(client, await make_key(state, kind=KeyKind.ADMIN))
    clock.advance(3599)
    assert (await client.get("/admin")).status_code == 200
    clock.advance(2)
    answer = await client.get("/admin")
    assert (answer.status_code, answer.headers["location"]) == (303, "/admin/login")


async def test_revoking_the_key_ends_its_sessions(
    client: httpx.AsyncClient, state: AppState
) -> None:
    csrf = await login(client, await make_key(state, kind=KeyKind.ADMIN, name="leaving"))
    async with unit_of_work(state.sessions) as session:
        await service_keys.revoke_key(session, state.clock, state.identity.caches, name="leaving")
    assert (await client.get("/admin/servers")).status_code == 303
    refused = await client.post("/admin/logout", data={"csrf": csrf})
    assert refused.status_code == 401
    assert problem_type(refused) == "dashboard-login-required"


async def test_a_forged_or_tampered_cookie_is_no_session(
    client: httpx.AsyncClient, state: AppState
) -> None:
    await login(client, await make_key(state, kind=KeyKind.ADMIN))
    genuine = client.cookies[COOKIE]
    client.cookies.clear()
    key_hex, issued, nonce, mac = genuine.split(".")
    for forged in (
        f"{key_hex}.{int(issued) + 10_000}.{nonce}.{mac}",
        f"{key_hex}.{issued}.{nonce}.{mac[:-2]}AA",
        "garbage",
        "a.b.c.d.e",
    ):
        client.cookies.set(COOKIE, forged, domain="homeport.test", path="/admin")
        assert (await client.get("/admin")).status_code == 303, forged
        client.cookies.clear()


async def test_api_credentials_are_not_a_dashboard_session(
    client: httpx.AsyncClient, state: AppState
) -> None:
    admin = await make_key(state, kind=KeyKind.ADMIN)
    assert (await client.get("/admin", headers=bearer(admin))).status_code == 303
    answer = await client.post("/admin/players/00000000-0000-0000-0000-000000000000/unban")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("field", "headers"),
    [
        (None, {}),
        ("wrong-token", {}),
        ("<right>", {"Origin": "https://evil.example"}),
        ("<right>", {"Referer": "https://evil.example/page"}),
        ("<right>", {"Origin": "null"}),
    ],
)
async def test_state_changes_without_the_sessions_token_or_from_another_site_are_refused(
    client: httpx.AsyncClient,
    state: AppState,
    field: str | None,
    headers: dict[str, str],
) -> None:
    csrf = await login(client, await make_key(state, kind=KeyKind.ADMIN))
    device = {"device_id": "csrf-victim-device"}
    player = (await client.post("/v1/auth/device", json=device)).json()["player"]["id"]
    data = {} if field is None else {"csrf": csrf if field == "<right>" else field}
    answer = await client.post(f"/admin/players/{player}/ban", data=data, headers=headers)
    assert answer.status_code == 403
    assert problem_type(answer) == "dashboard-csrf-refused"
    profile = await client.get(f"/admin/players/{player}")
    assert 'id="player-status">active' in profile.text


async def test_the_token_of_another_session_is_refused(
    client: httpx.AsyncClient, app: Any, state: AppState
) -> None:
    first = await login(client, await make_key(state, kind=KeyKind.ADMIN))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as other:
        await login(other, await make_key(state, kind=KeyKind.ADMIN))
        answer = await other.post("/admin/logout", data={"csrf": first})
    assert answer.status_code == 403
    same = await client.post("/admin/logout", data={"csrf": first}, headers={"Origin": ORIGIN})
    assert same.status_code == 303
