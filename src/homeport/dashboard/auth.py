"""Dashboard logins: an admin key exchanged for a signed, short-lived session cookie.

The cookie holds `<key id>.<issued at>.<nonce>.<mac>`, an HMAC-SHA256 over the rest. Nothing in
it is secret but the MAC, and the key itself is never stored in the browser. Every request
looks the key up again (one primary-key read), so revoking the key (`homeport keys revoke`)
ends its dashboard sessions at once. State-changing requests also need a CSRF token derived
from the session's nonce, and a same-origin `Origin`/`Referer` when the browser sends one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Request
from sqlalchemy import select

from homeport.clock import Clock
from homeport.errors import Forbidden, Unauthorized
from homeport.identity.models import ServerKey
from homeport.identity.server_keys import KeyKind
from homeport.netaddr import forwarded_https
from homeport.ratelimit import SlidingWindow
from homeport.settings import Settings
from homeport.state import AppState

COOKIE = "homeport_admin"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SECRET_FILE = "dashboard-session.key"  # noqa: S105 - a file name, not a secret
CLOCK_SKEW = 60
"""Seconds a cookie may claim to be from the future (replicas' clocks differ a little)."""


class LoginRequired(Unauthorized):
    slug = "dashboard-login-required"
    title = "Log in to the dashboard first"


class CsrfRefused(Forbidden):
    slug = "dashboard-csrf-refused"
    title = "The request did not come from a dashboard page of this session"


@dataclass(frozen=True)
class AdminSession:
    key_id: uuid.UUID
    key_name: str
    issued_at: int
    nonce: str
    csrf: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def load_secret(settings: Settings) -> bytes:
    """The setting, else the secret file beside the signing keys, created on first use."""
    if settings.dashboard_secret:
        return hashlib.sha256(settings.dashboard_secret.encode()).digest()
    directory = settings.keys_dir
    path = directory / SECRET_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = directory / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            # A hard link never replaces: when several workers start at once, the first wins
            # and the others read its secret.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            Path(tmp).unlink()
    return bytes.fromhex(path.read_text().strip())


class Sessions:
    """Issues and checks session cookies and CSRF tokens; counts failed logins per address."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._secret = load_secret(settings)
        self._clock = clock
        self.ttl = settings.dashboard_session_ttl
        self.failed_logins = SlidingWindow(
            clock, limit=settings.auth_login_max_failures, window=settings.auth_login_failure_window
        )

    def _mac(self, value: str) -> str:
        return _b64(hmac.new(self._secret, value.encode(), hashlib.sha256).digest())

    def issue(self, key_id: uuid.UUID) -> str:
        issued = int(self._clock.now().timestamp())
        value = f"{key_id.hex}.{issued}.{secrets.token_urlsafe(16)}"
        return f"{value}.{self._mac(value)}"

    def csrf_token(self, nonce: str) -> str:
        return self._mac(f"csrf:{nonce}")

    def read(self, cookie: str | None) -> tuple[uuid.UUID, int, str] | None:
        """(key id, issued at, nonce) of a genuine, unexpired cookie; else None."""
        if not cookie or len(cookie) > 200:
            return None
        value, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(value).encode()):
            return None
        try:
            key_hex, issued_text, nonce = value.split(".", 2)
            key_id, issued = uuid.UUID(hex=key_hex), int(issued_text)
        except ValueError:
            return None
        now = int(self._clock.now().timestamp())
        if not issued - CLOCK_SKEW <= now < issued + self.ttl:
            return None
        return key_id, issued, nonce


async def current_session(state: AppState, sessions: Sessions, request: Request) -> AdminSession:
    """The session of this request, its key still a live admin key; else `LoginRequired`."""
    found = sessions.read(request.cookies.get(COOKIE))
    if found is None:
        raise LoginRequired()
    key_id, issued, nonce = found
    async with state.read_sessions() as db:
        key = (
            await db.execute(
                select(ServerKey.name, ServerKey.kind, ServerKey.revoked_at).where(
                    ServerKey.id == key_id
                )
            )
        ).one_or_none()
    if key is None or key.kind != KeyKind.ADMIN.value or key.revoked_at is not None:
        raise LoginRequired("The admin key of this session was revoked")
    return AdminSession(key_id, key.name, issued, nonce, sessions.csrf_token(nonce))


def is_https(request: Request, settings: Settings) -> bool:
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-proto")
    return request.url.scheme == "https" or forwarded_https(peer, forwarded, settings)


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site. Browsers send `Origin`
    on every cross-site POST; a request without either header is not a browser's. The scheme
    is not compared: behind a proxy that ends TLS the page is https and the request http."""
    origin = request.headers.get("origin")
    claimed = origin if origin is not None else request.headers.get("referer")
    if claimed is None:
        return True
    parts = urlsplit(claimed)
    own = request.headers.get("host", "")
    return parts.scheme in ("http", "https") and parts.netloc.lower() == own.lower()


def check_csrf(request: Request, admin: AdminSession, submitted: str | None) -> None:
    if not same_origin(request):
        raise CsrfRefused("The request's Origin is another site")
    token = submitted or request.headers.get(CSRF_HEADER) or ""
    if not hmac.compare_digest(token.encode(), admin.csrf.encode()):
        raise CsrfRefused("The CSRF token is missing or does not belong to this session")
