"""Every row of the addon's request table, sent to a live Homeport the way the addon sends it:
the request is built from the row alone (path, method, headers, body fields), in an order where
each call has what it needs from the ones before, and each must succeed. A row without a step
here fails, like a route without a row in the authorization matrix."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import database_for
from tests.e2e.live import LiveServer, cli, environment
from tests.godot.test_contract import TABLE

pytestmark = pytest.mark.e2e

CHUNK = b"\x00chunk of a world\xff" * 64
SHA = hashlib.sha256(CHUNK).hexdigest()


@dataclass
class Call:
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    query: dict[str, Any] = field(default_factory=dict)
    credential: str = ""


@dataclass
class Replay:
    url: str
    server_key: str
    seen: dict[str, Any] = field(default_factory=dict)

    def send(self, name: str, call: Call) -> httpx.Response:
        """The request exactly as HomeportHttp.prepare builds it from the row."""
        row = TABLE[name]
        path = row["path"]
        for param, value in call.params.items():
            slot = "{" + param + "}"
            assert slot in path, f"{name}: no parameter {param}"
            path = path.replace(slot, quote(value, safe=""))
        assert "{" not in path, f"{name}: parameters missing in {path}"
        assert set(call.query) <= set(row.get("query", [])), name
        check_body(name, row.get("body"), call.body)
        headers = {}
        for header, value in row["headers"].items():
            if "{" in value:
                value = value.replace("{access_token}", call.credential)
                value = value.replace("{server_key}", call.credential)
            headers[header] = value
        content = None
        if isinstance(call.body, bytes):
            content = call.body
        elif call.body is not None:
            content = json.dumps(call.body).encode()
        target = self.url + path + ("?" + urlencode(call.query) if call.query else "")
        return httpx.request(row["method"], target, headers=headers, content=content, timeout=15)


def check_body(name: str, fields: Any, body: Any) -> None:
    """The addon's own rule (HomeportHttp._body_problem), so the replay cannot send more."""
    if fields is None:
        assert body is None, name
    elif fields == "bytes":
        assert isinstance(body, bytes), name
    else:
        assert isinstance(body, dict), name
        assert set(body) <= set(fields), name
        assert {f for f, kind in fields.items() if kind == "required"} <= set(body), name


def register(r: Replay) -> Call:
    r.seen["email"] = f"contract-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": r.seen["email"], "password": "correct horse battery", "display_name": "C"}
    return Call(body=body)


def steps(world: str = "contract") -> list[tuple[str, Callable[[Replay], Call]]]:
    """The rows in an order where each has what it needs; `world` names the world and server."""
    password = "correct horse battery"

    def player(r: Replay) -> str:
        return str(r.seen["auth.login"]["access_token"])

    def key(r: Replay) -> str:
        return r.server_key

    def server(r: Replay) -> dict[str, str]:
        return {"server_id": str(r.seen["servers.register"]["server_id"])}

    def ticket(r: Replay) -> dict[str, str]:
        return {"ticket_id": str(r.seen["matchmaking.create"]["id"])}

    return [
        ("auth.register", register),
        ("auth.login", lambda r: Call(body={"email": r.seen["email"], "password": password})),
        ("auth.device", lambda r: Call(body={"device_id": f"contract-{uuid.uuid4().hex}"})),
        (
            "auth.link_email",
            lambda r: Call(
                body={"email": f"linked-{uuid.uuid4().hex[:8]}@example.com", "password": password},
                credential=str(r.seen["auth.device"]["access_token"]),
            ),
        ),
        (
            "auth.refresh",
            lambda r: Call(body={"refresh_token": r.seen["auth.register"]["refresh_token"]}),
        ),
        ("me", lambda r: Call(credential=player(r))),
        (
            "servers.register",
            lambda r: Call(
                body={"name": f"contract-{world}", "port": 7777, "max_players": 8, "map": "dunes"},
                credential=key(r),
            ),
        ),
        (
            "servers.heartbeat",
            lambda r: Call(
                server(r), {"players": 0, "player_ids": [], "state": "ready"}, credential=key(r)
            ),
        ),
        ("servers.list", lambda r: Call(query={"q": world, "limit": 5}, credential=player(r))),
        (
            "validate",
            lambda r: Call(body={"player_token": player(r), **server(r)}, credential=key(r)),
        ),
        (
            "data.write",
            lambda r: Call(
                {"player": r.seen["me"]["id"], "collection": "profile", "key": "progress"},
                {"value": {"xp": 10}, "version": 0},
                credential=key(r),
            ),
        ),
        (
            "data.read_own",
            lambda r: Call({"collection": "profile", "key": "progress"}, credential=player(r)),
        ),
        (
            "leaderboards.records",
            lambda r: Call({"board_id": "contract"}, query={"limit": 5}, credential=player(r)),
        ),
        ("matchmaking.create", lambda r: Call(body={"queue": "duel"}, credential=player(r))),
        ("matchmaking.get", lambda r: Call(ticket(r), query={"wait": 0}, credential=player(r))),
        (
            "realtime",
            lambda r: Call(query={"ticket": ticket(r)["ticket_id"]}, credential=player(r)),
        ),
        ("matchmaking.cancel", lambda r: Call(ticket(r), credential=player(r))),
        ("worlds.lease", lambda r: Call({"world": world}, credential=key(r))),
        ("worlds.missing", lambda r: Call({"world": world}, {"hashes": [SHA]}, credential=key(r))),
        (
            "worlds.upload",
            lambda r: Call({"world": world, "sha256": SHA}, CHUNK, credential=key(r)),
        ),
        (
            "worlds.commit",
            lambda r: Call({"world": world}, {"manifest": {"0,0": SHA}}, credential=key(r)),
        ),
        ("worlds.get", lambda r: Call({"world": world}, credential=key(r))),
        ("worlds.download", lambda r: Call({"world": world, "sha256": SHA}, credential=key(r))),
        ("worlds.release", lambda r: Call({"world": world}, credential=key(r))),
        ("servers.deregister", lambda r: Call(server(r), credential=key(r))),
        ("auth.logout", lambda r: Call(credential=player(r))),
    ]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, str]]:
    directory = tmp_path_factory.mktemp("contract-live")
    env = environment(
        directory,
        database_for(request, directory),
        HOMEPORT_FLEET_ENABLED="false",
        HOMEPORT_FLEETS='{"arena": {}}',
        HOMEPORT_MATCHMAKING_QUEUES='{"duel": {"fleet": "arena", "teams": 2, "team_size": 1}}',
    )
    scopes = "validate,registry,players:read,players:write,worlds"
    key = cli(env, "keys", "create", "--name", "godot", "--scopes", scopes).stdout.split()[-1]
    admin = cli(env, "keys", "create", "--name", "admin", "--admin").stdout.split()[-1]
    live = LiveServer(env).start()
    try:
        made = httpx.post(
            live.url + "/v1/admin/leaderboards",
            json={"id": "contract"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert made.status_code == 201, made.text
        yield live, key
    finally:
        assert live.stop() == 0


def test_every_row_has_a_step() -> None:
    assert [name for name, _ in steps()] == list(dict.fromkeys(n for n, _ in steps()))
    assert {name for name, _ in steps()} == set(TABLE)


def test_every_row_works_against_a_live_homeport(backend: tuple[LiveServer, str]) -> None:
    live, key = backend
    replay = Replay(live.url, key)
    world = f"contract-{uuid.uuid4().hex[:8]}"
    for name, step in steps(world):
        call = step(replay)
        if TABLE[name].get("websocket"):
            row = TABLE[name]
            url = live.url.replace("http://", "ws://") + row["path"] + "?" + urlencode(call.query)
            auth = row["headers"]["Authorization"].replace("{access_token}", call.credential)
            with connect(url, additional_headers={"Authorization": auth}, open_timeout=10) as ws:
                hello, pushed = json.loads(ws.recv(10)), json.loads(ws.recv(10))
            assert hello["type"] == "hello", hello
            assert pushed["ticket"]["id"] == call.query["ticket"], pushed
            continue
        answer = replay.send(name, call)
        assert 200 <= answer.status_code < 300, f"{name}: {answer.status_code} {answer.text}"
        if TABLE[name].get("answer") == "bytes":
            assert answer.content == CHUNK
        elif answer.content:
            replay.seen[name] = answer.json()
    listed = replay.seen["servers.list"]["servers"]
    assert [server["name"] for server in listed] == [f"contract-{world}"], listed
    assert replay.seen["data.read_own"]["value"] == {"xp": 10}
    assert replay.seen["validate"]["player"]["id"] == replay.seen["me"]["id"]
