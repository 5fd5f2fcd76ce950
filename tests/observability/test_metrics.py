"""`GET /metrics` through the ASGI app: what known actions move, and by exactly how much."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx
import pytest

from homeport import __version__
from homeport.app import create_app
from homeport.clock import FakeClock
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type, register
from tests.observability.scraping import Samples, moved, parse, value
from tests.worlds.saving import random_chunks, save

TOKEN = "metrics-token-for-tests-0123"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(metrics_state_ttl=0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def test_actions_move_their_counters_by_exactly_their_number(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    key = await make_key(state, scopes={"validate", "registry", "players:write"})
    stale = (await register(client))["access_token"]
    clock.advance(state.settings.auth_access_ttl + 1)
    fresh = await register(client)
    server = await client.post(
        "/v1/servers", headers=bearer(key), json={"name": "EU", "port": 7000, "max_players": 8}
    )
    server_id = server.json()["server_id"]
    before = await scrape(client)

    for _ in range(3):
        ok = await client.post(
            "/v1/validate", headers=bearer(key), json={"player_token": fresh["access_token"]}
        )
        assert ok.status_code == 200, ok.text
    for _ in range(2):
        refused = await client.post(
            "/v1/validate", headers=bearer(key), json={"player_token": stale}
        )
        assert problem_type(refused) == "token-expired"
    beat = await client.put(
        f"/v1/servers/{server_id}/heartbeat",
        headers=bearer(key),
        json={"players": 2, "state": "ready"},
    )
    assert beat.status_code == 200, beat.text
    player = fresh["player"]["id"]
    saved = await client.put(
        f"/v1/players/{player}/data/progress/main",
        headers={**bearer(key), "If-Match": '"0"'},
        json={"value": {"xp": 1}},
    )
    assert saved.status_code == 200, saved.text
    after = await scrape(client)

    validate = {"method": "POST", "route": "/v1/validate"}
    heartbeat = {"method": "PUT", "route": "/v1/servers/{server_id}/heartbeat"}
    save = {"method": "PUT", "route": "/v1/players/{player}/data/{collection}/{key}"}
    metrics = {"method": "GET", "route": "/metrics"}
    passed, refusal = {"result": "ok", "reason": ""}, {"result": "refused"}
    expected = {
        ("homeport_validations_total", frozenset(passed.items())): 3,
        (
            "homeport_validations_total",
            frozenset({**refusal, "reason": "token-expired"}.items()),
        ): 2,
        ("homeport_heartbeats_total", frozenset(passed.items())): 1,
        ("homeport_player_data_saves_total", frozenset({**passed, "kind": "document"}.items())): 1,
        ("homeport_http_requests_total", frozenset({**validate, "status": "200"}.items())): 3,
        ("homeport_http_requests_total", frozenset({**validate, "status": "401"}.items())): 2,
        ("homeport_http_requests_total", frozenset({**heartbeat, "status": "200"}.items())): 1,
        ("homeport_http_requests_total", frozenset({**save, "status": "200"}.items())): 1,
        ("homeport_http_requests_total", frozenset({**metrics, "status": "200"}.items())): 1,
        ("homeport_http_request_duration_seconds_count", frozenset(validate.items())): 5,
        ("homeport_http_request_duration_seconds_count", frozenset(heartbeat.items())): 1,
        ("homeport_http_request_duration_seconds_count", frozenset(save.items())): 1,
        ("homeport_http_request_duration_seconds_count", frozenset(metrics.items())): 1,
    }
    changes = moved(before, after)
    buckets = {k: v for k, v in changes.items() if k[0].endswith("_bucket")}
    assert {k: v for k, v in changes.items() if k not in buckets} == expected
    inf = frozenset({**validate, "le": "+Inf"}.items())
    assert buckets[("homeport_http_request_duration_seconds_bucket", inf)] == 5

    assert value(after, "homeport_servers", state="ready") == 1
    assert value(after, "homeport_server_players") == 2
    assert value(after, "homeport_build_info", version=__version__) == 1


async def test_routes_are_labelled_by_template_never_by_path(
    client: httpx.AsyncClient, state: AppState
) -> None:
    key = await make_key(state, scopes={"registry"})
    server = await client.post(
        "/v1/servers", headers=bearer(key), json={"name": "EU", "port": 7000, "max_players": 8}
    )
    server_id = server.json()["server_id"]
    before = await scrape(client)
    assert (await client.get(f"/v1/servers/{server_id}")).status_code == 200
    assert (await client.get(f"/v1/servers/{uuid.uuid4()}")).status_code == 404
    assert (await client.get(f"/no/such/{uuid.uuid4()}")).status_code == 404
    assert (await client.post("/v1/servers/x/heartbeat", json={})).status_code == 405
    assert (await client.delete("/v1/me")).status_code == 405
    # A body without Content-Type: the body middleware hands routing a copy of the scope.
    device = await client.post("/v1/auth/device", content=b'{"device_id": "device-metrics-1"}')
    assert device.status_code == 201, device.text
    samples = await scrape(client)

    routes = {
        dict(labels)["route"]: dict(labels)
        for name, labels in samples
        if name == "homeport_http_requests_total"
    }
    assert "/v1/servers/{server_id}" in routes
    assert "unmatched" in routes
    assert "/v1/auth/device" in routes
    assert "/v1/servers" in routes
    text = (await client.get("/metrics")).text
    assert server_id not in text
    assert "/no/such" not in text
    # Templates only (a parameter may name its converter, as in `/admin/{rest:path}`).
    assert all(re.fullmatch(r"[a-z0-9/{}_.:\-]+", route) for route in routes), routes
    counted = {
        (labels["route"], labels["method"], labels["status"]): n
        for (name, pairs), n in moved(before, samples).items()
        if name == "homeport_http_requests_total"
        for labels in [dict(pairs)]
    }
    assert counted == {
        ("/v1/servers/{server_id}", "GET", "200"): 1,
        ("/v1/servers/{server_id}", "GET", "404"): 1,
        ("unmatched", "GET", "404"): 1,
        ("/v1/servers/{server_id}/heartbeat", "POST", "405"): 1,
        ("/v1/me", "DELETE", "405"): 1,
        ("/v1/auth/device", "POST", "201"): 1,
        ("/metrics", "GET", "200"): 1,
    }


@pytest.fixture
def token_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(metrics_token=TOKEN)


async def test_a_metrics_token_is_required_once_set(
    token_settings: Settings, clock: FakeClock
) -> None:
    app = create_app(token_settings, clock=clock)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://h.test") as client:
            missing = await client.get("/metrics")
            assert missing.status_code == 401
            assert problem_type(missing) == "metrics-token-invalid"
            wrong = await client.get("/metrics", headers=bearer(TOKEN + "x"))
            assert problem_type(wrong) == "metrics-token-invalid"
            basic = await client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
            assert basic.status_code == 401
            right = await client.get("/metrics", headers=bearer(TOKEN))
            assert right.status_code == 200
            assert parse(right.text)
    finally:
        await app.state.homeport.close()


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ValueError, match="metrics_token"):
        Settings(metrics_token="short")


async def test_snapshot_commits_and_batch_saves_are_counted_with_their_reasons(
    client: httpx.AsyncClient, state: AppState
) -> None:
    key = await make_key(state, scopes={"worlds", "players:write"})
    player = (await register(client))["player"]["id"]
    before = await scrape(client)
    committed = await save(client, key, "island", random_chunks(2))
    assert committed.status_code == 201, committed.text
    lacking = await client.post(
        "/v1/worlds/island/snapshots", json={"manifest": {"a": "0" * 64}}, headers=bearer(key)
    )
    assert problem_type(lacking) == "chunks-missing"
    write = {"collection": "progress", "key": "k", "value": {"n": 1}, "version": 0}
    batch = await client.post(
        f"/v1/players/{player}/data", json={"writes": [write]}, headers=bearer(key)
    )
    assert batch.status_code == 200, batch.text
    stale = await client.post(
        f"/v1/players/{player}/data", json={"writes": [write]}, headers=bearer(key)
    )
    assert problem_type(stale) == "version-conflict"
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    commits = "homeport_world_snapshot_commits_total"
    assert delta(commits, result="ok", reason="") == 1
    assert delta(commits, result="refused", reason="chunks-missing") == 1
    saves = "homeport_player_data_saves_total"
    assert delta(saves, kind="batch", result="ok", reason="") == 1
    assert delta(saves, kind="batch", result="refused", reason="version-conflict") == 1
