"""A dedicated server's registry life against a live `homeport serve`, in real time: it
registers with Godot's bare request, heartbeats, is browsed and joined, and vanishes within
one lease of going silent."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.live import LiveServer, cli, environment

pytestmark = pytest.mark.e2e


def godot_request(
    server: LiveServer, method: str, path: str, key: str, body: dict[str, object]
) -> tuple[int, dict[str, object]]:
    """What Godot's HTTPRequest sends: no Content-Type, only Authorization and the body."""
    payload = json.dumps(body).encode()
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"User-Agent: GodotEngine/4.6.3.stable (Linux)\r\nAccept: */*\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    status, _, answer = server.raw(request)
    return status, json.loads(answer)


def test_register_heartbeat_browse_join_and_expire(db_url: str, tmp_path: Path) -> None:
    env = environment(
        tmp_path / "data",
        db_url,
        HOMEPORT_REGISTRY_HEARTBEAT_INTERVAL="1",
        HOMEPORT_REGISTRY_LEASE_INTERVALS="2",
        HOMEPORT_REGISTRY_PURGE_INTERVAL="0.2",
        HOMEPORT_LEADER_CHECK_INTERVAL="0.2",
    )
    if "sqlite" not in db_url:
        cli(env, "migrate")
    server = LiveServer(env).start()
    try:
        out = cli(env, "keys", "create", "--name", "eu", "--scopes", "registry,validate").stdout
        key = out.strip().splitlines()[-1]
        status, registered = godot_request(
            server,
            "POST",
            "/v1/servers",
            key,
            {"name": "EU #1", "port": 24565, "map": "island", "max_players": 8, "tags": ["pvp"]},
        )
        assert status == 201, registered
        server_id = registered["server_id"]
        assert registered["heartbeat_interval"] == 1
        assert registered["server"]["address"] == "127.0.0.1"  # type: ignore[index]

        with httpx.Client(base_url=server.url, timeout=10) as http:
            for players in (1, 2, 3):
                status, beat = godot_request(
                    server,
                    "PUT",
                    f"/v1/servers/{server_id}/heartbeat",
                    key,
                    {"players": players, "state": "ready"},
                )
                assert status == 200, beat
                time.sleep(0.5)
            listed = http.get("/v1/servers", params={"map": "island", "tag": "pvp"}).json()
            assert [(s["id"], s["players"]) for s in listed["servers"]] == [(server_id, 3)]

            device = http.post("/v1/auth/device", json={"device_id": "live-registry-device-1"})
            token = device.json()["access_token"]
            ticket = http.post(
                f"/v1/servers/{server_id}/join-ticket", headers={"Authorization": f"Bearer {token}"}
            ).json()
            status, admitted = godot_request(
                server,
                "POST",
                "/v1/validate",
                key,
                {"player_token": ticket["ticket"], "server_id": server_id},
            )
            assert status == 200, admitted
            assert admitted["server_id"] == server_id

            # The server goes silent: gone from the list within one lease (2 s).
            silent_since = time.monotonic()
            while http.get("/v1/servers").json()["servers"]:
                assert time.monotonic() - silent_since < 2.5, "still listed after its lease"
                time.sleep(0.1)
            status, late = godot_request(
                server, "PUT", f"/v1/servers/{server_id}/heartbeat", key, {"players": 0}
            )
            assert status == 404
            assert late["type"] == "urn:homeport:problem:server-not-registered"
    finally:
        assert server.stop() == 0
