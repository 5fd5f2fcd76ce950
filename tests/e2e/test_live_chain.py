"""The whole trust chain against a live `homeport serve` over real HTTP:
login → (game connect) → the server's exact seed validate request → accept; and the refusals.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.live import LiveServer, cli, environment

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"


def seed_validate(server: LiveServer, key: str, token: str) -> tuple[int, dict[str, str], bytes]:
    """Byte for byte what Godot 4's HTTPRequest sends: no Content-Type, only Authorization."""
    body = json.dumps({"player_token": token}).encode()
    request = (
        f"POST /v1/validate HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"User-Agent: GodotEngine/4.6.3.stable (Linux)\r\n"
        f"Accept: */*\r\n"
        f"Authorization: Bearer {key}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    return server.raw(request)


def test_login_connect_validate_accept_chain(db_url: str, tmp_path: Path) -> None:
    env = environment(tmp_path / "data", db_url, HOMEPORT_AUTH_CACHE_TTL="0.5")
    server = LiveServer(env).start()
    try:
        key = cli(env, "keys", "create", "--name", "eu-1", "--scopes", "validate").stdout
        key = key.strip().splitlines()[-1]
        assert key.startswith("hp_sk_")

        with httpx.Client(base_url=server.url, timeout=10) as http:
            register = http.post(
                "/v1/auth/register",
                json={"email": "ann@example.com", "password": PASSWORD, "display_name": "Ann"},
            )
            assert register.status_code == 201
            login = http.post(
                "/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
            )
            assert login.status_code == 200
            token = login.json()["access_token"]

            status, headers, body = seed_validate(server, key, token)
            assert status == 200, body
            assert headers["content-type"] == "application/json"
            answer = json.loads(body)
            assert answer["player"]["display_name"] == "Ann"
            assert answer["player"]["id"] == login.json()["player"]["id"]

            status, headers, body = seed_validate(server, key, token[:-2] + "xx")
            assert status == 401
            assert headers["content-type"] == "application/problem+json"
            assert json.loads(body)["type"] == "urn:homeport:problem:token-invalid"

            logged_out = http.post("/v1/auth/device", json={"device_id": "device-e2e-0000000001"})
            gone = logged_out.json()["access_token"]
            assert (
                http.post(
                    "/v1/auth/logout", headers={"Authorization": f"Bearer {gone}"}
                ).status_code
                == 204
            )
            status, _, body = seed_validate(server, key, gone)
            assert json.loads(body)["type"] == "urn:homeport:problem:session-revoked"

        # A key revoked from the CLI, beside the running server, stops working within the TTL.
        cli(env, "keys", "revoke", "eu-1")
        deadline = time.monotonic() + 5
        while (
            status := seed_validate(server, key, token)[0]
        ) == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 401
        assert server.stop() == 0

        # A restart logs no one out and forgets no revocation.
        second = cli(env, "keys", "create", "--name", "eu-2").stdout.strip().splitlines()[-1]
        server = LiveServer(env).start()
        assert seed_validate(server, second, token)[0] == 200
        _, _, body = seed_validate(server, second, gone)
        assert json.loads(body)["type"] == "urn:homeport:problem:session-revoked"
        assert seed_validate(server, key, token)[0] == 401
    finally:
        server.stop()


def test_key_cli_lists_without_secrets_and_refuses_bad_input(db_url: str, tmp_path: Path) -> None:
    env = environment(tmp_path / "data", db_url)
    created = cli(env, "keys", "create", "--name", "fleet", "--scopes", "validate,registry")
    key = created.stdout.strip().splitlines()[-1]
    admin = cli(env, "keys", "create", "--name", "ops", "--admin").stdout.strip().splitlines()[-1]
    assert admin.startswith("hp_admin_")
    listing = cli(env, "keys", "list").stdout
    assert "fleet\tserver\tregistry validate" in listing
    assert "ops\tadmin" in listing
    assert key not in listing
    assert admin not in listing
    assert cli(env, "keys", "create", "--name", "fleet", check=False).returncode == 1
    assert (
        cli(env, "keys", "create", "--name", "x", "--scopes", "root", check=False).returncode == 2
    )
    assert cli(env, "keys", "revoke", "nope", check=False).returncode == 1
    cli(env, "keys", "revoke", "fleet")
    assert "fleet\tserver\tregistry validate" in cli(env, "keys", "list").stdout
    assert "revoked" in cli(env, "keys", "list").stdout
    for _ in range(2):
        assert cli(env, "keys", "rotate-signing").stdout.startswith("new signing key ")
    signing = json.loads((tmp_path / "data" / "keys" / "signing.json").read_text())
    assert len(signing["keys"]) == 2
    assert [k["retired_at"] is None for k in signing["keys"]] == [True, False]
