"""With two apps on one database, only one runs the expiry purge, and the other takes over."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx
from sqlalchemy import func, select

from homeport.app import create_app
from homeport.clock import FakeClock
from homeport.registry.models import Server
from homeport.settings import Settings
from tests.factories import register_server, registry_key


async def _servers(state: object) -> int:
    async with state.read_sessions() as session:  # type: ignore[attr-defined]
        return int(await session.scalar(select(func.count()).select_from(Server)) or 0)


async def _wait_for(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_one_leader_purges_and_another_takes_over(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> None:
    settings = make_settings(registry_purge_interval=0.05, leader_check_interval=0.05)
    apps = [create_app(settings, clock=clock) for _ in range(2)]
    async with AsyncExitStack() as stack:
        contexts = [app.router.lifespan_context(app) for app in apps]
        for context in contexts:
            await stack.enter_async_context(context)
        state = apps[0].state.homeport
        transport = httpx.ASGITransport(app=apps[0], client=("198.51.100.1", 1))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://t")
        )
        key = await registry_key(state)
        await register_server(client, key, port=1)

        def leaders() -> list[int]:
            return [
                i
                for i, app in enumerate(apps)
                if any(loop.is_leader and loop.name == "registry-purge" for loop in app.state.loops)
            ]

        await _wait_for(lambda: len(leaders()) == 1)
        clock.advance(91)
        for _ in range(200):
            if await _servers(state) == 0:
                break
            await asyncio.sleep(0.02)
        assert await _servers(state) == 0
        assert len(leaders()) == 1

        # The leader stops (its process ends): the other one takes the loop over.
        first = leaders()[0]
        for loop in apps[first].state.loops:
            await loop.stop()
        await _wait_for(lambda: leaders() == [1 - first])
        await register_server(client, key, port=2)
        clock.advance(91)
        for _ in range(200):
            if await _servers(state) == 0:
                break
            await asyncio.sleep(0.02)
        assert await _servers(state) == 0
