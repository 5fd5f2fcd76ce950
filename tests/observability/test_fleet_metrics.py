"""The fleet agent's counters, with real processes: starts, restarts after crashes, exits."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY

from homeport.fleet.spec import GameServerState as S
from tests.fleet.conftest import Agent, sim_fleet

CRASHING = [sys.executable, "-c", "import sys; sys.exit(3)"]
FLEET = "crashy"


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"fleet": FLEET, **labels}) or 0.0


async def test_crashes_restarts_and_starts_are_counted_once_each(
    run_agent: Callable[..., Any],
) -> None:
    names: tuple[tuple[str, dict[str, str]], ...] = (
        ("homeport_fleet_process_starts_total", {"result": "started"}),
        ("homeport_fleet_process_restarts_total", {}),
        ("homeport_fleet_process_exits_total", {"outcome": "crashed"}),
        ("homeport_fleet_process_exits_total", {"outcome": "stopped"}),
    )
    before = [counted(name, **labels) for name, labels in names]
    agent: Agent = await run_agent(
        **{FLEET: sim_fleet(command=CRASHING, scaling={"buffer": 1, "max_servers": 1})}
    )

    async def three_crashes() -> bool:
        return len(await agent.servers(FLEET, S.CRASHED.value)) >= 3

    await agent.until(three_crashes, what="three crashes")
    agent.stop.set()  # the server it runs now, if any, is drained: a stopped exit
    await asyncio.wait_for(agent.task, 60)
    try:
        rows = await agent.servers(FLEET)
    finally:
        await agent.agent.close()  # the rows were read through its engine, closed already
    started = [row for row in rows if row.pid is not None]
    crashed = [row for row in rows if row.state == S.CRASHED.value]
    stopped = [row for row in rows if row.state == S.STOPPED.value]
    after = [counted(name, **labels) for name, labels in names]
    moved = [b - a for a, b in zip(before, after, strict=True)]
    assert len(crashed) >= 3
    assert moved == [len(started), len(started) - 1, len(crashed), len(stopped)], (
        moved,
        [(r.state, r.pid, r.reason) for r in rows],
    )
