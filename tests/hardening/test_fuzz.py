"""Schemathesis against a live `homeport serve`: generated requests for every operation of the
OpenAPI document, with an admin key, with a player's token and with no credential. No answer
may be a 5xx, and every answer must be one the document declares: its status, its content
type (problem+json for every 4xx), its headers and its body's schema. Bounded for the suite;
`bench/README.md` says how to run it longer.

Not checked: that every request the schema allows is accepted. Some rules are stricter than
JSON Schema says (printable text only, say), so those requests get a documented 422."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.live import LiveServer, cli, environment

EXAMPLES = 8
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def _fuzz(
    server: LiveServer, workdir: Path, headers: list[str]
) -> subprocess.CompletedProcess[str]:
    args = [str(SCHEMATHESIS), "run", f"{server.url}/openapi.json"]
    args += ["--checks", ",".join(CHECKS), "--phases", "fuzzing"]
    args += ["--max-examples", str(EXAMPLES), "--seed", "20261130", "--workers", "2"]
    for header in headers:
        args += ["--header", header]
    return subprocess.run(
        args, cwd=workdir, capture_output=True, text=True, timeout=600, check=False
    )


def test_every_generated_request_gets_a_documented_answer(db_url: str, tmp_path: Path) -> None:
    if not SCHEMATHESIS.exists():
        pytest.fail("schemathesis is not installed: pip install -e '.[test]'")
    env = environment(tmp_path / "data", db_url, HOMEPORT_AUTH_ADDRESS_MAX_ATTEMPTS="1000000")
    server = LiveServer(env).start()
    try:
        admin = cli(env, "keys", "create", "--name", "fuzz", "--admin").stdout.split()[-1]
        with httpx.Client(base_url=server.url, timeout=10) as http:
            device = {"device_id": "fuzz-device-0123456789"}
            player = http.post("/v1/auth/device", json=device).json()["access_token"]
        for credential in (
            [f"Authorization: Bearer {admin}"],
            [f"Authorization: Bearer {player}"],
            [],
        ):
            result = _fuzz(server, tmp_path, credential)
            assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
            assert "generated" in result.stdout
    finally:
        server.stop()
