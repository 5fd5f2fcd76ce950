"""A live `homeport serve --workers 2` with a fleet: every scrape reports the whole instance
(both workers and the supervisor's fleet agent), JSON log lines carry the request ids the
responses show, and `homeport status` prints the same figures."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from homeport.observability import multiprocess
from tests.e2e.live import LiveServer, cli, environment, free_port
from tests.observability.scraping import Samples, parse, value

pytestmark = pytest.mark.e2e
VALID, REFUSED = 20, 10


class Instance(LiveServer):
    """Two workers and a fleet agent: a graceful stop takes longer than a bare serve's."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        super().__init__(env, serve_args=("--workers", "2"), log=logs, stop_timeout=60)
        self.logs = logs

    def scrape(self) -> Samples:
        answer = httpx.get(self.url + "/metrics", timeout=10)
        assert answer.status_code == 200, answer.text
        return parse(answer.text)


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Iterator[Instance]:
    port = free_port()
    env = environment(
        tmp_path / "data",
        db_url,
        HOMEPORT_LOG_FORMAT="json",
        HOMEPORT_LOG_LEVEL="info",
        HOMEPORT_FLEETS=json.dumps({"demo": {"port_range": [port, port]}}),
        HOMEPORT_METRICS_STATE_TTL="0",
    )
    if "sqlite" not in db_url:
        cli(env, "migrate")
    server = Instance(env, tmp_path / "stderr.log").start()
    try:
        yield server
    finally:
        assert server.stop() == 0


async def _validate_at_once(url: str, key: str, tokens: list[str]) -> list[httpx.Response]:
    """Many connections at once, so that both workers take some."""

    async def one(token: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return await client.post(
                "/v1/validate",
                headers={"Authorization": f"Bearer {key}"},
                json={"player_token": token},
            )

    return list(await asyncio.gather(*(one(t) for t in tokens)))


def _wait_for(instance: Instance, name: str, labels: dict[str, str], at_least: float) -> Samples:
    deadline = time.monotonic() + 40
    while True:
        samples = instance.scrape()
        if value(samples, name, **labels) >= at_least:
            return samples
        assert time.monotonic() < deadline, f"{name}{labels} stayed below {at_least}"
        time.sleep(0.5)


def test_scrapes_add_up_every_process_and_logs_carry_request_ids(instance: Instance) -> None:
    env = instance.env
    scopes = "validate,registry,players:write"
    key = cli(env, "keys", "create", "--name", "gs", "--scopes", scopes).stdout.split()[-1]
    admin = cli(env, "keys", "create", "--name", "ops", "--admin").stdout.split()[-1]
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=instance.url, timeout=10) as http:
        player = http.post("/v1/auth/device", json={"device_id": "live-metrics-device-01"}).json()
        server = http.post(
            "/v1/servers", headers=auth, json={"name": "x", "port": 9, "max_players": 4}
        )
        server_id = server.json()["server_id"]
    # The fleet agent runs in the supervisor process: its counters are in the scrape too.
    _wait_for(instance, "homeport_fleet_servers", {"fleet": "demo", "state": "ready"}, 1)
    before = instance.scrape()

    answers = asyncio.run(
        _validate_at_once(
            instance.url, key, [player["access_token"]] * VALID + ["not-a-token"] * REFUSED
        )
    )
    assert sorted(a.status_code for a in answers) == [200] * VALID + [401] * REFUSED
    with httpx.Client(base_url=instance.url, timeout=10) as http:
        beat = http.put(
            f"/v1/servers/{server_id}/heartbeat",
            headers={**auth, "X-Request-ID": "live-beat-1"},
            json={"players": 3, "state": "ready"},
        )
        assert beat.status_code == 200, beat.text
        assert beat.headers["x-request-id"] == "live-beat-1"
        saved = http.put(
            f"/v1/players/{player['player']['id']}/data/progress/main",
            headers={**auth, "If-Match": '"0"'},
            json={"value": {"level": 2}},
        )
        assert saved.status_code == 200, saved.text

    ok = {"result": "ok", "reason": ""}
    invalid = {"result": "refused", "reason": "token-invalid"}
    validate = {"method": "POST", "route": "/v1/validate"}
    for _ in range(4):  # new connections: whichever worker answers, the sums are the same
        after = instance.scrape()

        def moved(name: str, labels: dict[str, str], after: Samples = after) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert moved("homeport_validations_total", ok) == VALID
        assert moved("homeport_validations_total", invalid) == REFUSED
        assert moved("homeport_http_requests_total", {**validate, "status": "200"}) == VALID
        assert moved("homeport_http_requests_total", {**validate, "status": "401"}) == REFUSED
        assert moved("homeport_http_request_duration_seconds_count", validate) == VALID + REFUSED
        assert moved("homeport_heartbeats_total", ok) == 1
        assert moved("homeport_player_data_saves_total", {**ok, "kind": "document"}) == 1
        started = {"fleet": "demo", "result": "started"}
        assert value(after, "homeport_fleet_process_starts_total", **started) == 1
        assert value(after, "homeport_servers", state="ready") == 2
        assert value(after, "homeport_server_players") == 3

    status = cli(env, "status", "--url", instance.url, "--admin-key", admin, "--json")
    report: dict[str, Any] = json.loads(status.stdout)
    assert report["ready"] is True
    assert report["validations"] == {"ok": VALID, "token-invalid": REFUSED}
    assert report["heartbeats"] == {"ok": 1}
    assert report["servers"] == {"ready": 2}
    assert report["players"] == 3
    assert report["fleets"]["demo"]["servers"] == {"ready": 1}
    assert report["fleets"]["demo"]["scaling"]["buffer"] == 1
    text = cli(env, "status", "--url", instance.url).stdout
    assert f"validations  ok {VALID}, token-invalid {REFUSED}" in text
    assert "fleet demo   1 ready" in text

    counters = multiprocess.default_directory(Path(env["HOMEPORT_DATA_DIR"]))
    assert counters.is_dir()
    assert instance.stop() == 0
    assert not counters.exists(), "the counters go with the instance"
    lines = [json.loads(line) for line in instance.logs.read_text().splitlines() if line]
    access = [line for line in lines if line["logger"] == "homeport.access"]
    validated = [line for line in access if line["route"] == "/v1/validate"]
    assert len(validated) == VALID + REFUSED
    assert len({line["pid"] for line in validated}) == 2, "both workers took validations"
    served_ids = {a.headers["x-request-id"] for a in answers}
    assert {line["request_id"] for line in validated} == served_ids
    (beat_line,) = [line for line in access if line["request_id"] == "live-beat-1"]
    assert beat_line["route"] == "/v1/servers/{server_id}/heartbeat"
    assert beat_line["status"] == 200


def test_status_of_a_dead_address_fails(tmp_path: Path) -> None:
    env = environment(tmp_path / "data", f"sqlite+aiosqlite:///{tmp_path}/none.db")
    dead = cli(env, "status", "--url", f"http://127.0.0.1:{free_port()}", check=False)
    assert dead.returncode == 1
    assert "does not answer" in dead.stderr
    quiet = cli(env, "status", "--url", f"http://127.0.0.1:{free_port()}", "--json", check=False)
    assert quiet.returncode == 1
    assert json.loads(quiet.stdout)["ready"] is False
