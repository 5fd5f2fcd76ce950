"""Request ids on responses and on every log line written while a request is handled."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from homeport.app import HomeportApp, create_app
from homeport.clock import FakeClock
from homeport.observability.logs import JsonFormatter
from homeport.settings import Settings
from tests.factories import bearer, make_key

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(log_format="json")


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the JSON handler writes, as `homeport serve` would send it to standard error."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[HomeportApp]:
    application = create_app(settings, clock=clock)

    async def speak() -> dict[str, str]:
        logging.getLogger("homeport.test").warning("inside the request", extra={"step": 2})
        return {}

    application.add_api_route("/test/speak", speak)
    yield application
    await application.state.homeport.close()


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_each_response_has_a_new_id_unless_the_caller_sent_a_safe_one(
    client: httpx.AsyncClient,
) -> None:
    first, second = await client.get("/healthz"), await client.get("/healthz")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(GENERATED.fullmatch(i) for i in ids)
    assert ids[0] != ids[1]
    kept = await client.get("/healthz", headers={"X-Request-ID": "lb-7f3a:01.x_y-z"})
    assert kept.headers["x-request-id"] == "lb-7f3a:01.x_y-z"


@pytest.mark.parametrize(
    "incoming",
    [b"<script>alert(1)</script>", b"a" * 129, b"two words", b"caf\xc3\xa9", b"x\x7fy", b""],
)
async def test_an_unsafe_incoming_id_is_replaced(
    client: httpx.AsyncClient, incoming: bytes
) -> None:
    answer = await client.get("/readyz", headers={b"X-Request-ID": incoming})
    assert GENERATED.fullmatch(answer.headers["x-request-id"])
    assert answer.headers.get_list("x-request-id") == [answer.headers["x-request-id"]]


async def test_log_lines_carry_the_id_the_response_shows(
    client: httpx.AsyncClient, log_lines: io.StringIO
) -> None:
    answer = await client.get("/test/speak")
    request_id = answer.headers["x-request-id"]
    kept = await client.get("/test/speak", headers={"X-Request-ID": "trace-42"})
    assert kept.headers["x-request-id"] == "trace-42"
    lines = parsed(log_lines)

    inside = [line for line in lines if line["logger"] == "homeport.test"]
    assert [(line["request_id"], line["step"]) for line in inside] == [
        (request_id, 2),
        ("trace-42", 2),
    ]
    assert {line["level"] for line in inside} == {"warning"}
    access = [line for line in lines if line["logger"] == "homeport.access"]
    assert [(a["request_id"], a["method"], a["route"], a["status"]) for a in access] == [
        (request_id, "GET", "/test/speak", 200),
        ("trace-42", "GET", "/test/speak", 200),
    ]
    assert all(a["duration_ms"] >= 0 and a["time"].endswith("Z") for a in access)


async def test_bare_endpoints_get_ids_and_access_lines_too(
    client: httpx.AsyncClient, log_lines: io.StringIO, state: Any
) -> None:
    key = await make_key(state)
    refused = await client.post(
        "/v1/validate",
        headers={**bearer(key), "X-Request-ID": "game-server-1"},
        json={"player_token": "nope"},
    )
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == "game-server-1"
    (access,) = [line for line in parsed(log_lines) if line["logger"] == "homeport.access"]
    assert (access["request_id"], access["route"], access["status"]) == (
        "game-server-1",
        "/v1/validate",
        401,
    )


async def test_text_logs_write_no_access_lines(
    make_settings: Callable[..., Settings], clock: FakeClock, log_lines: io.StringIO
) -> None:
    app = create_app(make_settings(log_format="text"), clock=clock)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://h.test") as client:
            answer = await client.get("/healthz")
        assert GENERATED.fullmatch(answer.headers["x-request-id"])
        assert [line for line in parsed(log_lines) if line["logger"] == "homeport.access"] == []
    finally:
        await app.state.homeport.close()
