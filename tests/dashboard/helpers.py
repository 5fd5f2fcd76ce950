"""Logging in to the dashboard through the ASGI app, as a browser would."""

from __future__ import annotations

import re

import httpx

from homeport.dashboard.auth import COOKIE

ORIGIN = "http://homeport.test"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def login(client: httpx.AsyncClient, key: str) -> str:
    """Log in with `key`; the session's CSRF token, read from a page like a form would."""
    answer = await client.post("/admin/login", data={"key": key}, headers={"Origin": ORIGIN})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/admin"
    assert COOKIE in client.cookies
    return csrf_of(await client.get("/admin"))


def csrf_of(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)
