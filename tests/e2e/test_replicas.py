"""Three replicas on one PostgreSQL behave as one backend: any of them takes any request, the
matcher runs on exactly one, and when that one is killed mid-matchmaking another takes over
within seconds — no ticket lost, none matched twice, no server given to two matches — and a
player waiting on a WebSocket of another replica hears of their match."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.conftest import database_for
from tests.e2e.live import environment
from tests.e2e.replicas import Replica, leader_of, ready_fleet_servers

pytestmark = pytest.mark.e2e

PLAYERS = 40
QUEUE = {"fleet": "arena", "teams": 2, "team_size": 1, "allocation_wait": 0, "skill": None}
FAILOVER_LIMIT = 10.0  # seconds: the leader check runs every 0.5 s here


@pytest.fixture(params=["postgresql"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Replica]]:
    env = environment(
        tmp_path,  # one data directory: the replicas share the token-signing keys
        database_for(request, tmp_path),
        HOMEPORT_FLEET_ENABLED="false",
        HOMEPORT_LEADER_CHECK_INTERVAL="0.5",
        HOMEPORT_MATCHMAKING_PASS_INTERVAL="0.5",
        HOMEPORT_FLEETS=json.dumps({"arena": {"scaling": {"buffer": 0, "max_servers": 0}}}),
        HOMEPORT_MATCHMAKING_QUEUES=json.dumps({"duel": QUEUE}),
        HOMEPORT_AUTH_ADDRESS_MAX_ATTEMPTS="100000",
    )
    started = [Replica(env, tmp_path / f"replica-{i}.log") for i in range(3)]
    try:
        for replica in started:
            replica.wait_ready()
        yield started
    finally:
        for replica in started:
            if replica.process.poll() is None:
                assert replica.stop() == 0, replica.log.read_text()[-3000:]


async def login(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    device = {"device_id": f"replica-{uuid.uuid4().hex}"}
    answer = await http.post(f"{url}/v1/auth/device", json=device)
    assert answer.status_code in (200, 201), answer.text
    body: dict[str, Any] = answer.json()
    return body


async def queue(http: httpx.AsyncClient, url: str, player: dict[str, Any]) -> str:
    headers = {"Authorization": f"Bearer {player['access_token']}"}
    body = {"queue": "duel"}
    answer = await http.post(f"{url}/v1/matchmaking/tickets", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def pushed_match(url: str, player: dict[str, Any], ticket_id: str) -> dict[str, Any]:
    """The ticket once allocated, as the realtime WebSocket of `url` pushes it (named in the
    URL, so that an allocation before the socket opened is pushed too)."""
    headers = {"Authorization": f"Bearer {player['access_token']}"}
    realtime = url.replace("http://", "ws://") + f"/v1/realtime?ticket={ticket_id}"
    async with connect(realtime, additional_headers=headers) as ws:
        async for message in ws:
            event = orjson.loads(message)
            ticket = event.get("ticket") or {}
            if ticket.get("id") == ticket_id and ticket.get("state") == "allocated":
                return dict(ticket)
    raise AssertionError("the WebSocket closed before the match")


async def final(http: httpx.AsyncClient, url: str, player: dict[str, Any], ticket_id: str) -> Any:
    headers = {"Authorization": f"Bearer {player['access_token']}"}
    deadline, ticket = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        answer = await http.get(
            f"{url}/v1/matchmaking/tickets/{ticket_id}", params={"wait": 10}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        ticket = answer.json()
        if ticket["state"] not in ("searching", "matched"):
            return ticket
    raise AssertionError(f"ticket still active after 60 s: {ticket}")


async def scenario(replicas: list[Replica], db_url: str) -> None:
    servers = await ready_fleet_servers(db_url, replicas[0].url, "arena", PLAYERS // 2 + 5)
    leader = await leader_of(replicas, db_url, "matchmaking")
    others = [r for r in replicas if r is not leader]
    spread = itertools.cycle([r.url for r in replicas])
    async with httpx.AsyncClient(timeout=60) as http:
        players = [await login(http, next(spread)) for _ in range(PLAYERS)]
        half = PLAYERS // 2
        # The first half queues on every replica, the leader included; some of them wait for
        # their match on a WebSocket of a replica that is not the leader.
        first = [await queue(http, next(spread), p) for p in players[:half]]
        watching = [
            asyncio.create_task(pushed_match(others[i % 2].url, players[i], first[i]))
            for i in range(4)
        ]
        await asyncio.sleep(0.3)  # the matcher is at work on them
        leader.kill()
        killed_at = time.monotonic()
        alive = itertools.cycle([r.url for r in others])
        second = [await queue(http, next(alive), p) for p in players[half:]]
        successor = await leader_of(others, db_url, "matchmaking", timeout=FAILOVER_LIMIT)
        failover = time.monotonic() - killed_at
        tickets = await asyncio.gather(
            *(
                final(http, next(alive), player, ticket_id)
                for player, ticket_id in zip(players, first + second, strict=True)
            )
        )
        pushed = await asyncio.wait_for(asyncio.gather(*watching), 30)
    assert successor in others
    assert failover < FAILOVER_LIMIT
    states = Counter(t["state"] for t in tickets)
    assert states == {"allocated": PLAYERS}, states
    matches = Counter(t["match_id"] for t in tickets)
    assert set(matches.values()) == {2}, "every match has its two players, and only them"
    per_server = {t["server"]["id"] for t in tickets}
    assert len(per_server) == len(matches), "no server serves two matches"
    assert per_server <= set(servers)
    player_ids = [t["players"][0] for t in tickets]
    assert len(set(player_ids)) == PLAYERS, "no player is in two matches"
    for ticket, seen in zip(tickets[:4], pushed, strict=True):
        assert seen["match_id"] == ticket["match_id"]
        assert seen["server"]["id"] == ticket["server"]["id"]


def test_killing_the_matchmaking_leader_loses_and_doubles_nothing(
    replicas: list[Replica],
) -> None:
    asyncio.run(scenario(replicas, replicas[0].env["HOMEPORT_DB_URL"]))
