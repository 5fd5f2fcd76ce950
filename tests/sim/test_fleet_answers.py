"""The sim server against a scripted Homeport, in process: the answers a live one cannot be
made to give on cue (a drain, an allocation, a forgotten registration, an outage), and the
line protocol's edges."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from homeport.sim import server as sim_server
from homeport.sim.config import Config
from homeport.sim.player import Denied, SimPlayer, connect
from homeport.sim.server import SimServer, main

PROBLEM = "urn:homeport:problem:"


def problem(status: int, slug: str) -> httpx.Response:
    return httpx.Response(status, json={"type": PROBLEM + slug, "status": status})


class FakeHomeport:
    def __init__(self) -> None:
        self.server_ids: list[str] = []
        self.deregistered: list[str] = []
        self.beats: list[dict[str, Any]] = []
        self.heartbeat_extra: dict[str, Any] = {}
        self.documents: dict[str, tuple[dict[str, Any], int]] = {}
        self.register_answer: httpx.Response | None = None
        self.forget = False
        self.down = False

    def player_id(self, name: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        method, path = request.method, request.url.path
        body = json.loads(request.content) if request.content else {}
        if (method, path) == ("POST", "/v1/servers"):
            if self.register_answer is not None:
                return self.register_answer
            self.server_ids.append(str(uuid.uuid4()))
            self.forget = False
            return httpx.Response(
                201, json={"server_id": self.server_ids[-1], "heartbeat_interval": 0.05}
            )
        if method == "PUT" and path.endswith("/heartbeat"):
            if self.forget or path.split("/")[3] != self.server_ids[-1]:
                return problem(404, "server-not-registered")
            self.beats.append({"server_id": path.split("/")[3], **body})
            answer = {"server_id": self.server_ids[-1], "heartbeat_interval": 0.05}
            return httpx.Response(200, json={**answer, **self.heartbeat_extra})
        if method == "DELETE":
            self.deregistered.append(path.split("/")[3])
            return httpx.Response(204)
        if path == "/v1/validate":
            token = body["player_token"]
            if not token.startswith("good-"):
                return problem(401, "token-invalid")
            player = {"id": self.player_id(token), "display_name": token}
            stored = self.documents.get(player["id"])
            profile = {"progress": {"value": stored[0], "version": stored[1]}} if stored else {}
            return httpx.Response(200, json={"player": player, "data": {"profile": profile}})
        player_id = path.split("/")[3]
        value, version = self.documents.get(player_id, ({}, 0))
        if method == "GET":
            if not version:
                return problem(404, "document-not-found")
            return httpx.Response(200, json={"value": value, "version": version})
        if body["version"] != version:
            return problem(409, "version-conflict")
        self.documents[player_id] = (body["value"], version + 1)
        return httpx.Response(200, json={"value": body["value"], "version": version + 1})


async def until(check: Callable[[], Any], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


@pytest.fixture
def homeport() -> FakeHomeport:
    return FakeHomeport()


@dataclasses.dataclass
class Running:
    server: SimServer
    exit: asyncio.Task[int]
    """Done once the server has stopped; its result is the exit code."""

    @property
    def port(self) -> int:
        return self.server.port


@asynccontextmanager
async def running(homeport: FakeHomeport, **options: Any) -> AsyncIterator[Running]:
    config = Config(
        url="http://homeport.test",
        key="hp_sk_test",
        fleet_server_id=None,
        port=0,
        address="127.0.0.1",
        bind="127.0.0.1",
        name=None,
        map="arena",
        mode="",
        region="",
        version="",
        max_players=16,
        save_interval=0,
        grace=5,
        stop_file=None,
        linger=5,
        log_level="info",
    )
    server = SimServer(
        dataclasses.replace(config, **options), transport=httpx.MockTransport(homeport.handle)
    )
    sim = Running(server, asyncio.create_task(server.run()))
    try:
        await until(lambda: server.registration.server_id is not None or sim.exit.done())
        yield sim
    finally:
        server.request_stop("the test is over")
        await sim.exit


async def join(sim: Running, name: str) -> SimPlayer:
    return await connect("127.0.0.1", sim.port, f"good-{name}", timeout=5)


async def test_a_drain_from_the_fleet_stops_it_gracefully(homeport: FakeHomeport) -> None:
    async with running(homeport) as sim:
        player = await join(sim, "ann")
        await player.gain_xp(30)
        homeport.heartbeat_extra = {"action": "drain", "allocation": None}
        async with asyncio.timeout(5):
            assert await player.wait_closed_by_server() == "BYE draining"
            assert await sim.exit == 0
    assert homeport.documents[player.player_id] == ({"xp": 30, "level": 1, "sessions": 1}, 1)
    assert homeport.deregistered == homeport.server_ids


async def test_an_allocated_match_runs_in_match_and_the_server_leaves_after_it(
    homeport: FakeHomeport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", "homeport.sim")
    async with running(homeport, linger=0.3) as sim:
        ann_id = homeport.player_id("good-ann")
        allocation = {"allocation_id": "a-1", "match_id": "m-1", "players": [ann_id]}
        homeport.heartbeat_extra = {"action": None, "allocation": allocation, "metadata": {}}
        await until(lambda: homeport.beats and homeport.beats[-1]["state"] == "in_match")
        ann = await join(sim, "ann")
        await ann.quit()
        ann = await join(sim, "ann")  # back within the linger: the match goes on
        await asyncio.sleep(0.5)
        assert not sim.exit.done()
        await ann.quit()
        async with asyncio.timeout(3):
            assert await sim.exit == 0
    assert caplog.text.count("allocated: allocation a-1, match m-1") == 1  # every beat repeats it
    assert "match over" in caplog.text
    assert homeport.documents[ann_id][0] == {"xp": 0, "level": 1, "sessions": 2}


async def test_a_forgotten_server_registers_again(homeport: FakeHomeport) -> None:
    async with running(homeport) as sim:
        player = await join(sim, "ann")
        await until(lambda: homeport.beats)
        homeport.forget = True
        await until(lambda: homeport.beats[-1]["server_id"] != homeport.server_ids[0])
        assert len(homeport.server_ids) == 2
        assert homeport.beats[-1] == {
            "server_id": homeport.server_ids[1],
            "players": 1,
            "player_ids": [player.player_id],
            "state": "ready",
        }
        await player.quit()


async def test_an_outage_is_waited_out_and_no_save_is_lost(homeport: FakeHomeport) -> None:
    async with running(homeport) as sim:
        player = await join(sim, "ann")
        homeport.down = True
        with pytest.raises(Denied) as unavailable:
            await join(sim, "bob")
        assert unavailable.value.problem_type == "homeport-unavailable"
        beats = len(homeport.beats)
        await player.gain_xp(1500)  # a level up: its save waits out the outage
        await asyncio.sleep(0.5)
        homeport.down = False
        await until(lambda: player.player_id in homeport.documents)
        assert homeport.documents[player.player_id] == ({"xp": 1500, "level": 2, "sessions": 1}, 1)
        await until(lambda: len(homeport.beats) > beats)
        await player.quit()
    assert sim.exit.result() == 0


async def test_a_refused_registration_ends_it(homeport: FakeHomeport) -> None:
    homeport.register_answer = problem(403, "missing-scope")
    async with running(homeport) as sim:
        async with asyncio.timeout(5):
            assert await sim.exit == 1


async def test_the_line_protocol_edges(
    homeport: FakeHomeport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim_server, "HELLO_TIMEOUT", 0.2)
    async with running(homeport, max_players=1) as sim:

        async def exchange(*lines: bytes) -> list[bytes]:
            """Send the lines, then end the conversation; every line the server sent back."""
            reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
            writer.writelines(lines)
            if lines:
                writer.write_eof()
            async with asyncio.timeout(5):
                answers = [answer async for answer in reader]
            writer.close()
            await writer.wait_closed()
            return answers

        assert await exchange() == [b"DENIED hello-timeout\n"]  # said nothing: shown the door
        assert await exchange(b"XP 5\n") == [b"DENIED hello-expected\n"]
        assert await exchange(b"HELLO " + b"x" * 9000 + b"\n") == []  # over-long: cut off
        answers = await exchange(b"HELLO good-ann\n", b"XP 0\n", b"XP 10001\n", b"XP x\n")
        assert answers[1:] == [b"ERR invalid-xp\n"] * 3
        answers = await exchange(b"HELLO good-ann\n", b"DANCE\n", b"XP 10000\n", b"QUIT\n")
        assert answers[1:] == [b"ERR unknown-command\n", b"OK 10000 11\n", b"BYE\n"]
        ann = await join(sim, "ann")
        with pytest.raises(Denied) as full:
            await join(sim, "bob")
        assert full.value.problem_type == "server-full"
        await ann.close()


def test_without_url_or_key_it_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "HOMEPORT_URL" in capsys.readouterr().err
    assert main(["--url", "http://127.0.0.1:9"]) == 2
    assert "HOMEPORT_SERVER_KEY" in capsys.readouterr().err
    assert main(["--url", "http://127.0.0.1:9", "--key", "k", "--port", "x"]) == 2
