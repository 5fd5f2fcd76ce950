"""The one place errors become HTTP: RFC 9457 `application/problem+json` responses."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from homeport.errors import (
    BadRequest,
    Forbidden,
    HomeportError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    UnprocessableContent,
    UnsupportedMediaType,
)

log = logging.getLogger("homeport.errors")
PROBLEM_JSON = "application/problem+json"
# What a database that is down, restarting, overloaded or locked raises: through SQLAlchemy,
# or straight from the drivers where hot paths use them raw (asyncpg's refused connection
# arrives as an OSError). Each means "retry shortly", not "we broke". asyncpg's
# InternalClientError is its protocol refusing to go on after a message it did not expect,
# which is how a server's shutdown notice lands on a connection that was between statements.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    OSError,
    sqlite3.OperationalError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database is down, restarting or out of reach. SQLAlchemy wraps
    some of those (PostgreSQL "starting up", "shutting down") in a plain DBAPIError, so the
    error it wraps is looked at too."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        wrapped = exc.orig
        return isinstance(wrapped, DATABASE_UNAVAILABLE) or isinstance(
            getattr(wrapped, "__cause__", None), DATABASE_UNAVAILABLE
        )
    return False


BODY_PARSE_FAILED = "There was an error parsing the body"
"""FastAPI's 400 for a body its JSON reading failed on in a way other than a JSON error."""
_BY_STATUS: dict[int, type[HomeportError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: UnprocessableContent,
}


def problem_response(
    error: HomeportError, instance: str | None = None, extra_headers: dict[str, str] | None = None
) -> Response:
    headers = error.headers()
    if extra_headers:
        headers.update(extra_headers)
    return Response(
        orjson.dumps(error.problem(instance)),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # The offending input is not echoed back: it may be huge, or a password.
    return [
        {
            "loc": [str(part)[:64] for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()[:20]
    ]


async def _homeport_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HomeportError)
    return problem_response(exc, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    error = UnprocessableContent(errors=_validation_errors(exc))
    return problem_response(error, request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error: HomeportError
    if isinstance(exc.__cause__, HomeportError):
        # FastAPI wraps errors raised while it reads the body (e.g. the body-size limit).
        return problem_response(exc.__cause__, request.url.path)
    if exc.status_code == 400 and exc.detail == BODY_PARSE_FAILED:
        # A body that is not even text (bad UTF-8): as unreadable as any other broken JSON.
        error = UnprocessableContent(
            errors=[{"loc": ["body"], "msg": "The body is not valid JSON", "type": "json_invalid"}]
        )
    elif exc.status_code == 404:
        error = NotFound(f"No route for {request.url.path}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    else:
        kind = _BY_STATUS.get(
            exc.status_code, BadRequest if exc.status_code < 500 else HomeportError
        )
        error = kind(str(exc.detail))
    return problem_response(error, request.url.path, dict(exc.headers or {}))


async def _database_error(request: Request, exc: Exception) -> Response:
    # Lost connections and lock time-outs pass: tell the caller to retry, not that we broke.
    log.warning("database error on %s %s: %s", request.method, request.url.path, exc)
    error = Unavailable("The database is busy or unreachable; retry shortly")
    return problem_response(error, request.url.path, {"Retry-After": "1"})


async def _unexpected(request: Request, exc: Exception) -> Response:
    if database_unavailable(exc):
        return await _database_error(request, exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(HomeportError("An internal error occurred"), request.url.path)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HomeportError, _homeport_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _database_error)
    # A plain DBAPIError may wrap an outage ("the database system is shutting down"). Handled
    # here rather than by the catch-all, whose errors Starlette raises again to the server.
    app.add_exception_handler(DBAPIError, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
