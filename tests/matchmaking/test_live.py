"""Matchmaking end to end: a live `homeport serve`, its fleet of reference servers, 40 players
in a 2x5 queue, long polls and WebSockets, and players connecting with their connect tokens."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

from homeport.fleet.spec import FleetSpec
from homeport.matchmaking.queues import QueueSpec
from homeport.sim import player as sim_player
from tests.e2e.live import free_port
from tests.fleet.test_serve import Serve, _env

QUEUE = QueueSpec(fleet="arena", teams=2, team_size=5, allocation_wait=30)
FLEET = FleetSpec(port_range=(28000, 28999), scaling={"buffer": 4, "max_servers": 6})


async def _players(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    made = []
    for index in range(count):
        answer = await client.post(
            "/v1/auth/device", json={"device_id": f"live-matchmaking-{index:06d}"}
        )
        assert answer.status_code == 201, answer.text
        made.append(answer.json())
    return made


async def _listen(url: str, token: str, into: list[dict[str, Any]]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url, additional_headers=headers) as socket:
        async for message in socket:
            into.append(orjson.loads(message))
            if into[-1].get("type") == "ticket" and into[-1]["ticket"]["state"] == "allocated":
                return


def test_forty_players_get_four_matches_each_on_its_own_server(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = _env(tmp_path, db_url, port, FLEET)
    env["HOMEPORT_FLEETS"] = json.dumps({"arena": FLEET.model_dump(mode="json")})
    env["HOMEPORT_MATCHMAKING_QUEUES"] = json.dumps({"ranked": QUEUE.model_dump(mode="json")})
    env["HOMEPORT_AUTH_ADDRESS_MAX_ATTEMPTS"] = "100000"
    (tmp_path / "data").mkdir()
    serve = Serve(env, port)
    try:
        asyncio.run(_play(serve.url))
    finally:
        serve.process.send_signal(15)
        assert serve.process.wait(60) == 0, serve.log.read_text()[-3000:]


async def _play(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        players = await _players(client, 40)
        pushed: list[list[dict[str, Any]]] = [[], []]
        ws_url = url.replace("http://", "ws://") + "/v1/realtime"
        listeners = [
            asyncio.create_task(_listen(ws_url, players[i]["access_token"], pushed[i]))
            for i in range(2)
        ]
        await asyncio.sleep(0.5)  # the sockets are open before the tickets exist
        tickets = []
        for player in players:
            answer = await client.post(
                "/v1/matchmaking/tickets",
                json={"queue": "ranked"},
                headers={"Authorization": f"Bearer {player['access_token']}"},
            )
            assert answer.status_code == 201, answer.text
            tickets.append(answer.json())

        async def settled(player: dict[str, Any], ticket: dict[str, Any]) -> dict[str, Any]:
            auth = {"Authorization": f"Bearer {player['access_token']}"}
            for _ in range(6):
                answer = await client.get(
                    f"/v1/matchmaking/tickets/{ticket['id']}", params={"wait": 30}, headers=auth
                )
                body: dict[str, Any] = answer.json()
                if body["state"] not in ("searching", "matched"):
                    return body
            raise AssertionError(f"ticket still {body['state']}")

        final = await asyncio.gather(
            *(settled(p, t) for p, t in zip(players, tickets, strict=True))
        )
        assert {t["state"] for t in final} == {"allocated"}, [t["reason"] for t in final]
        by_match: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for ticket in final:
            by_match[ticket["match_id"]].append(ticket)
        assert len(by_match) == 4
        servers = set()
        for group in by_match.values():
            assert len(group) == 10
            assert len({(t["server"]["address"], t["server"]["port"]) for t in group}) == 1
            assert sorted(sum(1 for t in group if t["team"] == team) for team in (0, 1)) == [5, 5]
            servers.add(group[0]["server"]["id"])
        assert len(servers) == 4, "each match on its own server"

        await asyncio.wait_for(asyncio.gather(*listeners), 30)
        for messages in pushed:
            last = messages[-1]["ticket"]
            assert last["state"] == "allocated"
            assert last["connect_token"].startswith("hp_jt_")

        # One match's players connect to their server with their connect tokens.
        group = next(iter(by_match.values()))
        owner = {t["id"]: p for p, t in zip(players, final, strict=True)}
        connected = []
        for ticket in group:
            server = ticket["server"]
            connection = await sim_player.connect(
                server["address"], server["port"], ticket["connect_token"]
            )
            assert connection.player_id == owner[ticket["id"]]["player"]["id"]
            connected.append(connection)
        for connection in connected:
            await connection.quit()
