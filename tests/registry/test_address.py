"""A server's address defaults to where its request came from, through trusted proxies only."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from homeport.app import create_app
from homeport.clock import FakeClock
from homeport.settings import Settings
from tests.factories import register_server, registry_key


def _client(app: object, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://homeport.test")


async def test_forwarded_address_believed_only_from_trusted_proxies(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> None:
    app = create_app(make_settings(trusted_proxies=["10.0.0.0/8"]), clock=clock)
    state = app.state.homeport
    try:
        key = await registry_key(state)
        forwarded = {"X-Forwarded-For": "198.51.100.20"}
        async with _client(app, "10.1.2.3") as via_proxy:
            via_proxy.headers.update(forwarded)
            body = await register_server(via_proxy, key, port=1)
            assert body["server"]["address"] == "198.51.100.20"
        async with _client(app, "192.0.2.50") as direct:
            direct.headers.update(forwarded)
            body = await register_server(direct, key, port=2)
            assert body["server"]["address"] == "192.0.2.50"
        async with _client(app, "10.1.2.3") as explicit:
            body = await register_server(explicit, key, port=3, address="play.example.com")
            assert body["server"]["address"] == "play.example.com"
    finally:
        await state.close()


async def test_forwarded_garbage_never_becomes_an_address(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> None:
    app = create_app(make_settings(trusted_proxies=["10.0.0.0/8"]), clock=clock)
    state = app.state.homeport
    try:
        key = await registry_key(state)
        cases = [
            ("evil host, 198.51.100.20", "198.51.100.20"),  # left of the client: ignored
            ("198.51.100.20, <script>", "10.1.2.3"),  # written by no proxy we trust
            ("x" * 5000, "10.1.2.3"),
            ("203.0.113.9, 10.9.9.9", "203.0.113.9"),  # through two trusted proxies
            ("2001:DB8::1", "2001:db8::1"),
        ]
        for port, (forwarded, expected) in enumerate(cases, start=1):
            async with _client(app, "10.1.2.3") as via_proxy:
                via_proxy.headers["X-Forwarded-For"] = forwarded
                body = await register_server(via_proxy, key, port=port)
                assert body["server"]["address"] == expected, forwarded
    finally:
        await state.close()
