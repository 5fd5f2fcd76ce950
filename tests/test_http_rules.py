"""Body rules and error rendering: every refusal is problem+json, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from homeport.app import create_app
from homeport.clock import FakeClock
from homeport.settings import Settings
from tests.factories import problem_type


async def test_oversized_declared_body_is_413_before_reading(client: httpx.AsyncClient) -> None:
    body = b'{"email": "' + b"a" * 70_000 + b'"}'
    response = await client.post("/v1/auth/login", content=body)
    assert response.status_code == 413
    assert problem_type(response) == "payload-too-large"
    assert response.json()["max_bytes"] == 65_536


async def test_oversized_streamed_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 1_000

    response = await client.post(
        "/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert problem_type(response) == "payload-too-large"


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b"null", b'"string"', b'{"email": 1, "password": []}', b"\xff\xfe"],
)
async def test_malformed_json_is_422_problem(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/v1/auth/login", content=body)
    assert response.status_code == 422
    assert problem_type(response) == "validation-failed"
    assert isinstance(response.json()["errors"], list)


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert problem_type(missing) == "not-found"
    wrong = await client.get("/v1/validate")
    assert wrong.status_code == 405
    assert problem_type(wrong) == "method-not-allowed"


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


@pytest.fixture
async def no_database(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose database refuses connections."""
    settings = make_settings(db_url="postgresql+asyncpg://nobody@127.0.0.1:9/none")
    app = create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c
    await app.state.homeport.close()


async def test_readiness_is_503_when_the_database_is_unreachable(
    no_database: httpx.AsyncClient,
) -> None:
    assert (await no_database.get("/healthz")).status_code == 200
    response = await no_database.get("/readyz")
    assert response.status_code == 503
    assert problem_type(response) == "unavailable"


async def test_openapi_is_served_and_lists_problem_responses(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    validate = schema["paths"]["/v1/validate"]["post"]
    assert "application/problem+json" in validate["responses"]["401"]["content"]
    assert "token-expired" in validate["responses"]["401"]["description"]
    assert (await client.get("/docs")).status_code == 200


async def test_an_unreachable_database_is_503_not_500(no_database: httpx.AsyncClient) -> None:
    login = await no_database.post(
        "/v1/auth/login", json={"email": "a@example.com", "password": "x" * 9}
    )
    validate = await no_database.post(
        "/v1/validate",
        headers={"Authorization": "Bearer hp_sk_" + "A" * 40},
        json={"player_token": "x"},
    )
    for response in (login, validate):
        assert response.status_code == 503, response.text
        assert problem_type(response) == "unavailable"
        assert response.headers["Retry-After"] == "1"


async def test_an_outage_sqlalchemy_does_not_name_is_503_and_ends_in_the_app(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """SQLAlchemy passes "the database system is shutting down" on as a plain DBAPIError. It is
    answered where the other outages are: an error left for the server to log would be one
    traceback per request for as long as the outage lasts."""

    async def shutting_down() -> None:
        notice = asyncpg.exceptions.CannotConnectNowError("the database system is shutting down")
        raise DBAPIError("SELECT 1", None, notice)

    app.add_api_route("/v1/shutting-down", shutting_down)
    response = await client.get("/v1/shutting-down")  # the client raises what the app raises
    assert response.status_code == 503, response.text
    assert problem_type(response) == "unavailable"
    assert response.headers["Retry-After"] == "1"
