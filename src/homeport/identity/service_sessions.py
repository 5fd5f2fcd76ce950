"""Sessions: start one at login, rotate its refresh token, revoke it, and authenticate a player.

A refresh token is used once. Presenting a spent one means it was copied; the whole session is
then revoked, so the thief and the victim both have to log in again.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.identity.auth_events import EventKind, record
from homeport.identity.context import Identity
from homeport.identity.errors import (
    PlayerBanned,
    RefreshTokenInvalid,
    RefreshTokenReused,
    SessionRevoked,
)
from homeport.identity.models import Account, RefreshToken, Session

REFRESH_PREFIX = "hp_rt_"
MAX_REFRESH_TOKEN_LENGTH = 128


@dataclass(frozen=True)
class IssuedSession:
    account: Account
    session_id: uuid.UUID
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    created: bool = False


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_refresh_token(session: AsyncSession, session_id: uuid.UUID, now: datetime) -> str:
    token = REFRESH_PREFIX + secrets.token_urlsafe(32)
    session.add(RefreshToken(token_hash=_hash(token), session_id=session_id, created_at=now))
    return token


async def start_session(
    session: AsyncSession, ident: Identity, account: Account, *, created: bool = False
) -> IssuedSession:
    now = ident.clock.now()
    row = Session(
        id=uuid.uuid4(),
        account_id=account.id,
        created_at=now,
        expires_at=now + timedelta(seconds=ident.settings.auth_refresh_ttl),
    )
    session.add(row)
    await session.flush()
    refresh = _new_refresh_token(session, row.id, now)
    access, claims = ident.tokens.issue(account.id, row.id)
    return IssuedSession(
        account, row.id, access, claims.expires_at, refresh, row.expires_at, created
    )


async def refresh(session: AsyncSession, ident: Identity, *, refresh_token: str) -> IssuedSession:
    if (
        not refresh_token.startswith(REFRESH_PREFIX)
        or len(refresh_token) > MAX_REFRESH_TOKEN_LENGTH
    ):
        raise RefreshTokenInvalid()
    now = ident.clock.now()
    token_hash = _hash(refresh_token)
    stored = await session.get(RefreshToken, token_hash)
    if stored is None:
        raise RefreshTokenInvalid()
    row = await session.get(Session, stored.session_id)
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise RefreshTokenInvalid("The session behind this refresh token has ended")
    # Conditional update: of two concurrent uses of one token exactly one wins.
    spent = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == token_hash, RefreshToken.spent_at.is_(None))
        .values(spent_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        await revoke_session(session, ident, row.id, reason="refresh-token-reused")
        raise RefreshTokenReused()
    account = await session.get(Account, row.account_id)
    if account is None:
        raise RefreshTokenInvalid()
    if account.banned:
        raise PlayerBanned()
    row.expires_at = now + timedelta(seconds=ident.settings.auth_refresh_ttl)
    row.refresh_count += 1
    new_refresh = _new_refresh_token(session, row.id, now)
    access, claims = ident.tokens.issue(account.id, row.id)
    return IssuedSession(account, row.id, access, claims.expires_at, new_refresh, row.expires_at)


async def revoke_session(
    session: AsyncSession, ident: Identity, session_id: uuid.UUID, *, reason: str
) -> None:
    await session.execute(
        update(Session)
        .where(Session.id == session_id, Session.revoked_at.is_(None))
        .values(revoked_at=ident.clock.now(), revoked_reason=reason)
    )
    record(session, ident.clock, EventKind.SESSION, str(session_id))
    ident.caches.forget_session(session_id)


async def revoke_all_sessions(
    session: AsyncSession, ident: Identity, account_id: uuid.UUID, *, reason: str
) -> None:
    await session.execute(
        update(Session)
        .where(Session.account_id == account_id, Session.revoked_at.is_(None))
        .values(revoked_at=ident.clock.now(), revoked_reason=reason)
    )
    record(session, ident.clock, EventKind.ACCOUNT, str(account_id))
    ident.caches.forget_account(account_id)


async def logout_by_refresh_token(
    session: AsyncSession, ident: Identity, *, refresh_token: str
) -> None:
    stored = await session.get(RefreshToken, _hash(refresh_token))
    # Only the current token of a session may end it: an old, leaked one must not.
    if stored is None or stored.spent_at is not None:
        raise RefreshTokenInvalid()
    await revoke_session(session, ident, stored.session_id, reason="logout")


@dataclass(frozen=True)
class Authenticated:
    account: Account
    session_id: uuid.UUID


async def authenticate_player(
    session: AsyncSession, ident: Identity, *, access_token: str
) -> Authenticated:
    """The account behind a player's access token, checked against the database (no cache)."""
    claims = ident.tokens.verify(access_token)
    result = await session.execute(
        select(Session, Account)
        .join(Account, Account.id == Session.account_id)
        .where(Session.id == claims.session_id)
    )
    pair = result.one_or_none()
    if pair is None:
        raise SessionRevoked()
    row, account = pair
    if account.id != claims.player_id:
        raise SessionRevoked()
    if row.revoked_at is not None or row.expires_at <= ident.clock.now():
        raise SessionRevoked()
    if account.banned:
        raise PlayerBanned()
    return Authenticated(account, row.id)
