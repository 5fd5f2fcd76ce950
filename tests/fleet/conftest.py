"""A live Homeport per database for the fleet's process tests, and an agent run in the test's
own event loop against it, so a test can watch every state the agent writes."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from homeport.clock import SystemClock
from homeport.db.session import unit_of_work
from homeport.fleet.agent import FleetAgent
from homeport.fleet.models import Fleet, GameServer
from homeport.fleet.spec import FleetSpec
from homeport.settings import Settings
from tests.conftest import FAST_HASHING, database_for
from tests.e2e.live import LiveServer, cli, environment

SIM = [sys.executable, "-m", "homeport.sim.server", "--save-interval", "600"]
BEAT = 1
"""Heartbeat interval for these tests (seconds): drains and expiries within a few seconds."""


def sim_fleet(**fields: Any) -> FleetSpec:
    spec: dict[str, Any] = {
        "command": [*SIM, "--port", "{port}", "--grace", "5"],
        "port_range": (26000, 26999),
        "grace_period": 8,
        "start_timeout": 30,
        "scaling": {"buffer": 1, "max_servers": 4, "scale_down_delay": 0},
    }
    spec.update(fields)
    return FleetSpec.model_validate(spec)


class Live:
    """`homeport serve` without its own fleet agent; the test runs the agent in-process."""

    def __init__(self, data_dir: Path, db_url: str) -> None:
        self.data_dir = data_dir
        self.db_url = db_url
        self.env = environment(
            data_dir,
            db_url,
            HOMEPORT_FLEET_ENABLED="false",
            HOMEPORT_REGISTRY_HEARTBEAT_INTERVAL=str(BEAT),
        )
        self.server = LiveServer(self.env).start()
        self.url = self.server.url
        admin = cli(self.env, "keys", "create", "--name", "fleet-admin", "--admin")
        self.admin = admin.stdout.strip().splitlines()[-1]
        self.http = httpx.Client(
            base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {self.admin}"}
        )

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request from an async test, off its event loop: the agent under test runs on that
        loop, and a blocking call made while it holds SQLite's write lock would stall both."""
        return await asyncio.to_thread(self.http.request, method, path, **kwargs)

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": self.data_dir,
            "db_url": self.db_url,
            "port": self.server.port,
            "registry_heartbeat_interval": BEAT,
            "fleet_reconcile_interval": 0.2,
            "fleet_crash_backoff": 0.3,
            "leader_check_interval": 0.2,
            **FAST_HASHING,
        }
        values.update(overrides)
        return Settings(**values)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One live Homeport per database for the whole module: starting one costs seconds."""
    directory = tmp_path_factory.mktemp(f"fleet-{request.param}")
    db_url = database_for(request, directory)
    backend = Live(directory, db_url)
    try:
        yield backend
    finally:
        backend.http.close()
        backend.server.stop()


class Agent:
    """A running agent and ways to read what it wrote."""

    def __init__(self, agent: FleetAgent, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
        self.agent = agent
        self.stop = stop
        self.task = task

    async def servers(self, fleet: str, *states: str) -> list[GameServer]:
        async with self.agent.sessions() as session:
            query = select(GameServer).where(GameServer.fleet == fleet)
            if states:
                query = query.where(GameServer.state.in_(states))
            return list(await session.scalars(query.order_by(GameServer.created_at)))

    async def fleet(self, name: str) -> Fleet:
        async with self.agent.sessions() as session:
            row = await session.get(Fleet, name)
        assert row is not None
        return row

    async def until(
        self, check: Callable[[], Any], *, timeout: float = 30, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            assert not self.task.done(), "the agent stopped"
            result = await check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.1)


@pytest.fixture
async def run_agent(live: Live) -> AsyncIterator[Callable[..., Any]]:
    started: list[Agent] = []

    async def start(**fleets: FleetSpec) -> Agent:
        settings = live.settings(fleets=fleets)
        agent = FleetAgent(settings, SystemClock())
        stop = asyncio.Event()
        running = Agent(agent, stop, asyncio.create_task(agent.run(stop)))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop.set()
        await asyncio.wait_for(running.task, 60)
    # The next test starts from no servers and no fleets.
    settings = live.settings()
    agent = FleetAgent(settings, SystemClock())
    async with unit_of_work(agent.sessions) as session:
        for row in await session.scalars(select(Fleet)):
            await session.delete(row)
        await session.execute(delete(GameServer))
    await agent.close()
