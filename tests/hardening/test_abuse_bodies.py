"""Bodies against a live `homeport serve`: a declared length or a chunked stream far past the
limit, and JSON bombs (deep nesting, wide or large values at the limits) in the JSON fields of
player documents, server metadata and leaderboard records.

Every refusal is a 4xx problem+json, none is a 5xx, nothing of a refused request is written,
and the server keeps serving. The body limits are read from raw sockets, so that what the
client has sent when the answer arrives is known exactly; what a refusal must tell a keep-alive
client is checked in process, as live it races inside Granian.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass

import httpx
import pytest

from tests.hardening.test_abuse import Live, assert_problem, live_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with live_server(request, tmp_path_factory) as server:
        yield server


def _read_head(sock: socket.socket, deadline: float) -> tuple[int, bytes]:
    """The status and everything read up to the deadline (the head and what followed it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]), data


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def _head(live: Live, method: str, path: str, *lines: str) -> bytes:
    return "\r\n".join(
        [
            f"{method} {path} HTTP/1.1",
            f"Host: 127.0.0.1:{live.server.port}",
            f"Authorization: Bearer {live.admin}",
            "Content-Type: application/json",
            *lines,
            "",
            "",
        ]
    ).encode()


DECLARED = 100_000_000


@dataclass(frozen=True)
class World:
    player: str
    server: str
    board: str = "bodies"


@pytest.fixture(scope="module")
def world(live: Live) -> World:
    with live.client() as http:
        player = http.post("/v1/auth/device", json={"device_id": "bodies-device-000001"})
        server = {"name": "B", "port": 7000, "max_players": 4}
        made = http.post("/v1/servers", json=server, headers=live.auth)
        board = http.post("/v1/admin/leaderboards", json={"id": "bodies"}, headers=live.auth)
        assert board.status_code == 201, board.text
    return World(player=player.json()["player"]["id"], server=made.json()["server_id"])


def _targets(world: World) -> list[tuple[str, str, int]]:
    """(method, path, limit) of JSON endpoints: FastAPI routes and bare endpoints alike."""
    return [
        ("POST", "/v1/auth/login", 65_536),
        ("POST", "/v1/servers", 65_536),
        ("POST", "/v1/validate", 65_536),
        ("PUT", f"/v1/servers/{world.server}/heartbeat", 65_536),
        ("POST", f"/v1/leaderboards/{world.board}/records", 65_536),
        ("PUT", f"/v1/players/{world.player}/data/progress/k", 1_048_576),
        ("POST", f"/v1/players/{world.player}/data", 1_048_576),
    ]


def test_a_declared_huge_body_is_refused_before_it_is_sent(live: Live, world: World) -> None:
    for method, path, limit in _targets(world):
        with socket.create_connection(("127.0.0.1", live.server.port)) as sock:
            sent = _head(live, method, path, f"Content-Length: {DECLARED}") + b"[" * 4096
            sock.sendall(sent)
            started = time.monotonic()
            status, data = _read_head(sock, started + 2)
            took = time.monotonic() - started
            assert status == 413, (path, data[:300])
            assert b"application/problem+json" in data
            assert b'"max_bytes":%d' % limit in data
            assert took < 2, (path, took)
            assert len(sent) < DECLARED // 100
            # The server does not wait for the other 99.99 %: it hangs up.
            assert _closed_by_server(sock, 2), path


def _stream(live: Live, method: str, path: str, limit: int) -> tuple[int, bytes, int]:
    """Send a chunked body without end until the server answers; (status, data, bytes sent)."""
    chunk = b"%x\r\n%s\r\n" % (16_384, b" " * 16_384)
    with socket.create_connection(("127.0.0.1", live.server.port)) as sock:
        sock.sendall(_head(live, method, path, "Transfer-Encoding: chunked"))
        sock.setblocking(False)
        sent = 0
        data = pending = b""  # the rest of a chunk the socket took only part of
        deadline = time.monotonic() + 5
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
            while b"\r\n\r\n" not in data and time.monotonic() < deadline:
                for _, events in selector.select(timeout=0.1):
                    if events & selectors.EVENT_READ:
                        received = sock.recv(65536)
                        if not received:
                            return 0, data, sent
                        data += received
                    if events & selectors.EVENT_WRITE and sent < 4 * limit:
                        pending = pending or chunk
                        with suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
                            taken = sock.send(pending)
                            pending = pending[taken:]
                            sent += taken
        return int(data.split(b" ", 2)[1]) if data else 0, data, sent


def test_a_streamed_body_is_cut_off_at_the_limit(live: Live, world: World) -> None:
    for method, path, limit in _targets(world):
        status, data, sent = _stream(live, method, path, limit)
        assert status == 413, (path, sent, data[:300])
        assert b"application/problem+json" in data, path
        assert sent > limit  # it was answered for crossing the limit, not for a parse error
    with live.client() as http:
        assert http.get("/readyz").status_code == 200
        device = http.post("/v1/auth/device", json={"device_id": f"after-stream-{time.time_ns()}"})
        assert device.status_code == 201, device.text


DEPTH = 10_000


def _wide(room: int) -> str:
    """An object of many members, exactly `room` bytes long."""
    members: list[str] = []
    length = 2  # the braces
    while length + len(member := f'"k{len(members)}":0') + bool(members) <= room:
        members.append(member)
        length += len(member) + (len(members) > 1)
    members[-1] = '"' + "k" * (room - length) + members[-1][1:]  # still a key of its own
    return "{" + ",".join(members) + "}"


BOMBS: dict[str, Callable[[int], str]] = {
    "deep arrays": lambda _: "[" * DEPTH + "]" * DEPTH,
    "deep objects": lambda _: '{"a":' * DEPTH + "1" + "}" * DEPTH,
    "past the depth limit": lambda _: "[" * 40 + "]" * 40,
    "wide, to the body limit": _wide,
    "large, to the body limit": lambda room: '"' + "x" * (room - 2) + '"',
}
"""JSON values, given the room the body limit leaves them: the deep ones overflow recursive
parsers, the others fill the body to its limit but fit no document, metadata or field."""


def _bombed(world: World) -> list[tuple[str, str, str]]:
    """(method, path, body with BOMB where the bomb goes): JSON fields of several endpoints."""
    player = f"/v1/players/{world.player}/data"
    valid = '{"collection":"progress","key":"ok","value":{"a":1},"version":0}'
    bombed = '{"collection":"progress","key":"bomb","value":BOMB}'
    server = '{"name":"bomb","port":7001,"max_players":4,'
    record = '{"player_id":"' + world.player + '","score":1,"metadata":BOMB}'
    return [
        ("PUT", f"{player}/progress/bomb", '{"value":{"x":BOMB},"version":0}'),
        ("POST", player, '{"writes":[' + valid + "," + bombed + "]}"),
        ("PATCH", f"{player}/settings/bomb", '{"x":BOMB}'),
        ("POST", "/v1/servers", server + '"metadata":BOMB}'),
        ("POST", "/v1/servers", server + '"private_metadata":{"x":BOMB}}'),
        ("POST", "/v1/servers", server + '"tags":BOMB}'),
        ("PUT", f"/v1/servers/{world.server}/heartbeat", '{"players":BOMB}'),
        ("POST", f"/v1/leaderboards/{world.board}/records", record),
        ("POST", "/v1/validate", '{"player_token":BOMB}'),
        ("POST", "/v1/auth/login", '{"email":BOMB,"password":"x"}'),
    ]


def test_json_bombs_are_refused_and_nothing_is_written(live: Live, world: World) -> None:
    headers = {**live.auth, "Content-Type": "application/json"}
    with live.client() as http:
        for method, path, body in _bombed(world):
            limit = 1_048_576 if path.startswith("/v1/players/") else 65_536
            for name, bomb in BOMBS.items():
                content = body.replace("BOMB", bomb(limit - len(body) + len("BOMB")))
                assert len(content) <= limit
                answer = http.request(method, path, content=content, headers=headers)
                assert_problem(answer)
                assert answer.status_code in (400, 413, 422), (method, path, name, answer.text)
        assert http.get("/readyz").status_code == 200
        # Nothing of any refused request was stored.
        documents = http.get(f"/v1/players/{world.player}/data", headers=live.auth).json()
        keys = {d["key"] for found in documents["collections"].values() for d in found}
        assert not keys & {"bomb", "ok"}
        servers = http.get("/v1/servers", params={"limit": 100}).json()["servers"]
        assert not [server for server in servers if server["name"] == "bomb"]
        record = http.get(
            f"/v1/leaderboards/{world.board}/records/{world.player}", headers=live.auth
        )
        assert_problem(record, 404)


def test_a_document_at_the_size_limit_is_kept_and_one_byte_more_is_not(
    live: Live, world: World
) -> None:
    limit = 65_536  # players_document_max_bytes, counted as compact JSON
    fits = {"s": "x" * (limit - len('{"s":""}'))}
    over = {"s": "x" * (limit - len('{"s":""}') + 1)}
    path = f"/v1/players/{world.player}/data"
    with live.client() as http:
        kept = http.put(
            f"{path}/progress/at-limit", json={"value": fits, "version": 0}, headers=live.auth
        )
        assert kept.status_code == 200, kept.text
        refused = http.put(
            f"{path}/progress/over-limit", json={"value": over, "version": 0}, headers=live.auth
        )
        assert assert_problem(refused, 413)["type"] == "urn:homeport:problem:document-too-large"
        # In a batch, the one too large refuses the whole batch: the write before it is undone.
        writes = [
            {"collection": "progress", "key": "first", "value": {"a": 1}, "version": 0},
            {"collection": "progress", "key": "second", "value": over, "version": 0},
        ]
        batch = http.post(path, json={"writes": writes}, headers=live.auth)
        assert assert_problem(batch, 413)["index"] == 1
        assert http.get(f"{path}/progress/at-limit", headers=live.auth).json()["value"] == fits
        for key in ("over-limit", "first", "second"):
            assert_problem(http.get(f"{path}/progress/{key}", headers=live.auth), 404)


async def _streamed(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 16_384 + 1):
        yield b" " * 16_384


@pytest.mark.parametrize(
    ("path", "streamed"),
    [("/v1/auth/login", False), ("/v1/validate", False), ("/v1/auth/login", True)],
)
async def test_a_body_refused_unread_is_answered_with_connection_close(
    client: httpx.AsyncClient, path: str, streamed: bool
) -> None:
    """In process, as the bug is a race inside Granian live: whether its own `close` comes
    first. A client must learn from the answer that the connection will not carry another."""
    size = 70_000  # past the 64 KiB limit
    body = _streamed(size) if streamed else b"[" * size
    headers = {"Content-Type": "application/json", "Authorization": "Bearer hp_sk_x"}
    refused = await client.post(path, content=body, headers=headers)
    assert_problem(refused, 413)
    assert refused.headers.get("connection") == "close"
