"""The fleet agent with real processes: the reference server, started, allocated, crashed,
hung, drained and scaled down, on both databases."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from homeport.fleet.spec import GameServerState as S
from homeport.sim import player as sim_player
from tests.fleet.conftest import Agent, Live, sim_fleet

HUNG = [
    sys.executable,
    "-c",
    "import signal, time; signal.signal(15, signal.SIG_IGN); time.sleep(600)",
]
CRASHING = [sys.executable, "-c", "import sys; sys.exit(3)"]


async def ready(agent: Agent, fleet: str, count: int) -> list[Any]:
    async def enough() -> list[Any] | None:
        found = await agent.servers(fleet, S.READY.value)
        return found if len(found) >= count else None

    result: list[Any] = await agent.until(enough, what=f"{count} ready servers of {fleet}")
    return result


async def test_it_keeps_the_buffer_and_replaces_what_is_allocated(
    live: Live, run_agent: Callable[..., Any]
) -> None:
    agent: Agent = await run_agent(demo=sim_fleet(scaling={"buffer": 2, "max_servers": 4}))
    first = await ready(agent, "demo", 2)
    assert {s.port for s in first} <= set(range(26000, 27000))
    answer = await live.call("POST", "/v1/fleets/demo/allocate", json={"match_id": "m1"})
    assert answer.status_code == 200, answer.text
    granted = answer.json()
    assert granted["server_id"] in {str(s.id) for s in first}
    await ready(agent, "demo", 2)  # the buffer is ready again beside the allocated server
    live_servers = await agent.servers("demo", S.READY.value, S.ALLOCATED.value)
    assert len(live_servers) == 3

    async def in_match() -> bool:
        listed = (await live.call("GET", f"/v1/servers/{granted['server_id']}")).json()
        return bool(listed["state"] == "in_match")

    await agent.until(in_match, what="the allocated server reporting in_match")


async def test_a_killed_server_is_replaced_and_a_crash_loop_backs_off(
    live: Live, run_agent: Callable[..., Any]
) -> None:
    agent: Agent = await run_agent(
        demo=sim_fleet(scaling={"buffer": 1, "max_servers": 2}),
        broken=sim_fleet(command=CRASHING, scaling={"buffer": 1, "max_servers": 1}),
    )
    victim = (await ready(agent, "demo", 1))[0]
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)

    async def replaced() -> bool:
        crashed = await agent.servers("demo", S.CRASHED.value)
        fresh = await agent.servers("demo", S.READY.value)
        return any(c.id == victim.id for c in crashed) and bool(fresh)

    await agent.until(replaced, what="the killed server crashed and replaced")
    crashed = {c.id: c for c in await agent.servers("demo", S.CRASHED.value)}
    assert "signal 9" in crashed[victim.id].reason, crashed[victim.id].reason

    async def four_crashes() -> list[Any] | None:
        found = await agent.servers("broken", S.CRASHED.value)
        return found if len(found) >= 4 else None

    crashes = await agent.until(four_crashes, what="four crashes of the broken fleet")
    starts = [c.started_at for c in crashes[:4]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    # Back-off 0.3 s after the first crash, doubling after each further one.
    assert [g >= 0.3 * 2**i for i, g in enumerate(gaps)] == [True] * 3, gaps
    # Start-up time adds noise of its own on a busy machine; the widest step still shows.
    assert gaps[0] < gaps[2], gaps
    assert (await agent.fleet("broken")).crash_streak >= 4
    assert "status 3" in crashes[0].reason


async def test_a_server_that_ignores_sigterm_is_killed_after_the_grace_period(
    live: Live, run_agent: Callable[..., Any]
) -> None:
    agent: Agent = await run_agent(
        hung=sim_fleet(
            command=HUNG, start_timeout=1, grace_period=1, scaling={"buffer": 1, "max_servers": 1}
        )
    )

    async def stopped() -> list[Any] | None:
        return await agent.servers("hung", S.STOPPED.value) or None

    (server,) = (await agent.until(stopped, what="the hung server stopped"))[:1]
    assert "not ready within start_timeout" in server.reason
    assert "SIGKILL" in server.reason
    assert server.exit_code == -signal.SIGKILL
    assert server.term_at is not None
    assert server.ended_at is not None
    assert (server.ended_at - server.term_at).total_seconds() >= 1


async def test_scale_down_drains_empty_servers_only_and_saves_players(
    live: Live, run_agent: Callable[..., Any]
) -> None:
    agent: Agent = await run_agent(demo=sim_fleet(scaling={"replicas": 3, "max_servers": 4}))
    servers = await ready(agent, "demo", 3)
    device = {"device_id": f"fleet-scale-{os.getpid()}-{id(agent)}"}
    made = await live.call("POST", "/v1/auth/device", json=device, headers={})
    assert made.status_code == 201, made.text
    player = made.json()
    busy = servers[0]
    client = await sim_player.connect("127.0.0.1", busy.port, player["access_token"])
    await client.gain_xp(1500)

    async def counted() -> bool:
        rows = await agent.servers("demo", S.READY.value)
        return any(r.id == busy.id and r.players == 1 for r in rows)

    await agent.until(counted, what="the busy server reporting its player")
    scaled = await live.call("POST", "/v1/admin/fleets/demo/scale", json={"replicas": 0})
    assert scaled.status_code == 200

    async def two_stopped() -> list[Any] | None:
        found = await agent.servers("demo", S.STOPPED.value)
        return found if len(found) >= 2 else None

    stopped = await agent.until(two_stopped, what="the two empty servers drained")
    assert busy.id not in {s.id for s in stopped}
    assert all(s.exit_code == 0 for s in stopped), [(s.reason, s.exit_code) for s in stopped]
    assert all(s.term_at is None for s in stopped), "they left on the drain request alone"
    (still,) = await agent.servers("demo", S.READY.value)
    assert still.id == busy.id

    # An admin drains the busy one: its player is told and saved before it exits.
    answer = await live.call("POST", f"/v1/fleets/demo/servers/{busy.id}/drain")
    assert answer.status_code == 202, answer.text
    assert await asyncio.wait_for(client.wait_closed_by_server(), 30) == "BYE draining"
    await client.close()
    saved = await live.call("GET", f"/v1/players/{player['player']['id']}/data/profile/progress")
    assert saved.status_code == 200, saved.text
    assert saved.json()["value"]["xp"] == 1500
