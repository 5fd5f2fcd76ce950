"""Registry changes reach event subscribers, in another app on the same database too."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from homeport.app import create_app
from homeport.clock import FakeClock
from homeport.db.session import unit_of_work
from homeport.events.bus import Event, Subscription
from homeport.registry.service import purge_expired
from homeport.settings import Settings
from tests.factories import bearer, register_server, registry_key


async def _next(subscription: Subscription) -> Event:
    event = await subscription.get(within=10)
    assert event is not None, "no event arrived"
    return event


async def test_lifecycle_events_reach_another_process(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> None:
    settings = make_settings(events_poll_interval=0.02)
    writer_app = create_app(settings, clock=clock)
    listener_app = create_app(settings, clock=clock)
    writer = writer_app.state.homeport
    listener = listener_app.state.homeport
    transport = httpx.ASGITransport(app=writer_app, client=("198.51.100.4", 1))
    try:
        async with (
            listener.bus.subscribe("registry") as subscription,
            httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        ):
            key = await registry_key(writer)
            server_id = (await register_server(client, key))["server_id"]
            registered = await _next(subscription)
            assert (registered.kind, registered.subject) == ("server.registered", server_id)
            assert registered.data["port"] == 7777

            beat = await client.put(
                f"/v1/servers/{server_id}/heartbeat", json={"state": "ready"}, headers=bearer(key)
            )
            assert beat.status_code == 200
            changed = await _next(subscription)
            assert changed.kind == "server.state_changed"
            assert (changed.data["from"], changed.data["to"]) == ("starting", "ready")

            clock.advance(91)
            async with unit_of_work(writer.sessions) as session:
                await purge_expired(session, clock)
            assert (await _next(subscription)).kind == "server.expired"

            second = (await register_server(client, key, port=2))["server_id"]
            assert (await _next(subscription)).subject == second
            await client.delete(f"/v1/servers/{second}", headers=bearer(key))
            gone = await _next(subscription)
            assert (gone.kind, gone.data["reason"]) == ("server.deregistered", "deregistered")
    finally:
        await writer.close()
        await listener.close()
