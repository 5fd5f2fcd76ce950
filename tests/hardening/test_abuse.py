"""Login abuse against a live `homeport serve`: a credential-stuffing burst from one address,
and one account attacked from many.

One server per database serves the module. Clients bind distinct loopback addresses (all of
127.0.0.0/8 reaches the server on Linux), so the per-address limit sees real peers, and the
`X-Forwarded-For` each guess carries is ignored, as it must be when no proxy is trusted.
The other abuse modules (`test_abuse_bodies.py`, `test_abuse_slow.py`, `test_abuse_inputs.py`)
start their servers with the helpers defined here.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from homeport.clock import SystemClock
from homeport.db.engine import create_engine, create_sessionmaker
from homeport.db.session import unit_of_work
from homeport.identity import service_keys
from homeport.identity.server_keys import SCOPES, KeyKind
from homeport.settings import Settings
from tests.conftest import database_for
from tests.e2e.live import LiveServer, environment

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
ATTACKER = "127.0.0.2"
BYSTANDER = "127.0.0.3"
FAILURE_WINDOW = 3
"""Seconds an account stays locked by failed logins here (the default is 300)."""


@dataclass
class Live:
    server: LiveServer
    admin: str
    db_url: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin}"}

    def client(self, address: str = "127.0.0.1") -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=address)
        return httpx.Client(transport=transport, base_url=self.url, timeout=10)


@contextmanager
def live_server(
    request: pytest.FixtureRequest, factory: pytest.TempPathFactory, **extra: str
) -> Iterator[Live]:
    """A `homeport serve` without its fleet agent, and an admin key for it."""
    directory = factory.mktemp(f"abuse-{request.param}")
    db_url = database_for(request, directory)
    env = environment(directory / "data", db_url, HOMEPORT_FLEET_ENABLED="false", **extra)
    admin = asyncio.run(_admin_key(db_url))
    server = LiveServer(env)
    try:
        server.start()
    except BaseException:
        if server.process is not None:
            server.stop()  # closes its output pipe, which would leak otherwise
        raise
    try:
        yield Live(server, admin, db_url)
    finally:
        assert server.stop() == 0


async def _admin_key(db_url: str) -> str:
    """What `homeport keys create --admin` makes, without starting another interpreter."""
    engine = create_engine(Settings(db_url=db_url))
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            created = await service_keys.create_key(
                session, SystemClock(), name="abuse", kind=KeyKind.ADMIN, scopes=frozenset(SCOPES)
            )
    finally:
        await engine.dispose()
    return created.key


def assert_problem(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    return body


def register(live: Live, email: str, address: str = "127.0.0.1") -> dict[str, Any]:
    with live.client(address) as http:
        made = http.post(
            "/v1/auth/register", json={"email": email, "password": PASSWORD, "display_name": "V"}
        )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    extra = {"HOMEPORT_AUTH_LOGIN_FAILURE_WINDOW": str(FAILURE_WINDOW)}
    with live_server(request, tmp_path_factory, **extra) as server:
        yield server


def _login(email: str, password: str, n: int) -> tuple[str, dict[str, Any], dict[str, str]]:
    # Each guess claims another address; no proxy is trusted, so none of them is believed.
    return (
        "/v1/auth/login",
        {"email": email, "password": password},
        {"X-Forwarded-For": f"198.51.100.{n % 250}"},
    )


async def _burst(url: str, address: str, calls: list[tuple[str, Any, Any]]) -> list[httpx.Response]:
    transport = httpx.AsyncHTTPTransport(
        local_address=address, limits=httpx.Limits(max_connections=50)
    )
    async with httpx.AsyncClient(transport=transport, base_url=url, timeout=30) as client:
        return await asyncio.gather(
            *(client.post(path, json=body, headers=headers) for path, body, headers in calls)
        )


def test_a_credential_stuffing_burst_is_held_to_the_per_address_limit(live: Live) -> None:
    victim = "legit@example.com"
    register(live, victim)
    guesses = [_login(f"stuffed{n}@example.com", f"leaked password {n}", n) for n in range(200)]
    started = time.monotonic()
    answers = asyncio.run(_burst(live.url, ATTACKER, guesses))
    took = time.monotonic() - started
    # Default limit: 30 attempts a minute from one address. Counting happens before the first
    # await of a login, so concurrency cannot squeeze in one more.
    assert Counter(r.status_code for r in answers) == {401: 30, 429: 170}, took
    for refused in (r for r in answers if r.status_code == 429):
        body = assert_problem(refused, 429)
        assert body["type"] == "urn:homeport:problem:rate-limited"
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        assert body["retry_after"] == retry_after
    for failed in (r for r in answers if r.status_code == 401):
        assert assert_problem(failed)["type"] == "urn:homeport:problem:invalid-credentials"
    # The right password does not get the attacker's address through either...
    with live.client(ATTACKER) as http:
        blocked = http.post("/v1/auth/login", json={"email": victim, "password": PASSWORD})
        assert_problem(blocked, 429)
    # ...while the player, from their own address, logs in as usual.
    with live.client(BYSTANDER) as http:
        ok = http.post("/v1/auth/login", json={"email": victim, "password": PASSWORD})
        assert ok.status_code == 200, ok.text


def test_an_account_attacked_from_many_addresses_is_locked_for_its_window(live: Live) -> None:
    victim = "target@example.com"
    register(live, victim)
    max_failures = 5  # auth_login_max_failures, the default

    async def from_many_addresses() -> list[httpx.Response]:
        guesses = [
            _burst(live.url, f"127.0.1.{n + 1}", [_login(victim, f"guess number {n}", n)])
            for n in range(4 * max_failures)
        ]
        return [answer for answers in await asyncio.gather(*guesses) for answer in answers]

    answers = asyncio.run(from_many_addresses())
    # Failures are counted before the password is checked, so exactly the limit got a verdict.
    assert Counter(r.status_code for r in answers) == {401: max_failures, 429: 3 * max_failures}
    for refused in (r for r in answers if r.status_code == 429):
        assert assert_problem(refused)["detail"] == "Too many failed logins for this account"
    with live.client("127.0.2.1") as http:
        locked = http.post("/v1/auth/login", json={"email": victim, "password": PASSWORD})
        assert_problem(locked, 429)
        wait = int(locked.headers["Retry-After"])
        assert 1 <= wait <= FAILURE_WINDOW
        # The lock is the failures' sliding window: once the first has aged out, the right
        # password is let through again.
        time.sleep(wait)
        ok = http.post("/v1/auth/login", json={"email": victim, "password": PASSWORD})
        assert ok.status_code == 200, ok.text
        # A success clears the count: the next mistype is a plain 401, not a lock.
        again = http.post("/v1/auth/login", json={"email": victim, "password": "not it at all"})
        assert_problem(again, 401)
