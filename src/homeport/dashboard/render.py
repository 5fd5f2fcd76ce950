"""Rendering: the Jinja2 environment, security headers, HTML error pages, form bodies.

`DashboardRoute` is the route class of every dashboard route. It turns a refused login into a
redirect to the login page (GET) or a problem+json 401 (POST, which a browser only sends from a
page it has, so a script is the likely caller), a CSRF refusal into a 403 problem, and any other
domain error or bad input into a friendly HTML page with the error's status.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError

from homeport.dashboard.auth import COOKIE, CsrfRefused, LoginRequired
from homeport.errors import (
    HomeportError,
    PayloadTooLarge,
    UnprocessableContent,
    UnsupportedMediaType,
)
from homeport.problems import problem_response
from homeport.timefmt import rfc3339

FORM_MAX_BYTES = 16_384
MAX_FIELDS = 50
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


templates = Environment(
    loader=PackageLoader("homeport.dashboard", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["age"] = _age
templates.filters["time"] = lambda moment: rfc3339(moment) if moment else "-"


def page(request: Request, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("admin", getattr(request.state, "dashboard_admin", None))
    body = templates.get_template(name).render(request=request, **context)
    return HTMLResponse(body, status_code=status)


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return page(request, "error.html", status=status, title=title, detail=detail)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body, at most `FORM_MAX_BYTES`."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in ("", "application/x-www-form-urlencoded"):
        raise UnsupportedMediaType("Send the form as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_MAX_BYTES:
            raise PayloadTooLarge(f"The form is larger than {FORM_MAX_BYTES} bytes")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        text = ""
    try:
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except ValueError as exc:  # more fields than any dashboard form has
        raise UnprocessableContent(f"A form has at most {MAX_FIELDS} fields") from exc


def _validation_detail(exc: RequestValidationError | ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "The request is not valid"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path"))
    return f"{where or 'input'}: {first.get('msg', 'invalid')}"[:200]


class DashboardRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            response: Response
            try:
                response = await handler(request)
            except LoginRequired as exc:
                if request.method in ("GET", "HEAD"):
                    response = see_other("/admin/login")
                else:
                    response = problem_response(exc, request.url.path)
                if COOKIE in request.cookies:
                    response.delete_cookie(COOKIE, path="/admin")
            except CsrfRefused as exc:
                response = problem_response(exc, request.url.path)
            except HomeportError as exc:
                response = error_page(request, exc.status, exc.title, exc.detail or exc.title)
                for name, value in exc.headers().items():
                    response.headers[name] = value
            except (RequestValidationError, ValidationError) as exc:
                response = error_page(request, 422, "Bad input", _validation_detail(exc))
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return route
