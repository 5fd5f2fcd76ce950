"""`POST /v1/validate`: a dedicated server asks whether a player's token is real and whose it is.

This is the hottest call in the system (every connect of every player), so it is served from
memory where that is safe: verified token claims until the token expires, and each session's
state until an auth event says it changed, `auth_cache_max_age` seconds at most (see
`identity.caches` and `identity.auth_events`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport.identity.caches import CachedSession
from homeport.identity.context import Identity
from homeport.identity.errors import PlayerBanned, SessionRevoked
from homeport.identity.models import Account, Session
from homeport.identity.tokens import AccessClaims
from homeport.timefmt import rfc3339


def player_profile(account: Account) -> dict[str, Any]:
    """What a dedicated server learns about a player (no email: servers do not need it)."""
    return {
        "id": str(account.id),
        "display_name": account.display_name,
        "created_at": rfc3339(account.created_at),
        "is_anonymous": account.is_anonymous,
    }


@dataclass(frozen=True, slots=True)
class Validated:
    player: dict[str, Any]
    claims: AccessClaims

    def body(self) -> dict[str, Any]:
        return {
            "player": self.player,
            "session": {"id": self.claims.session_text, "expires_at": self.claims.expires_text},
            "data": {},
        }


async def _load_session(
    factory: async_sessionmaker[AsyncSession], ident: Identity, claims_sid: Any, player_id: Any
) -> CachedSession:
    async with factory() as session:
        result = await session.execute(
            select(Session, Account)
            .join(Account, Account.id == Session.account_id)
            .where(Session.id == claims_sid)
        )
        pair = result.one_or_none()
    if pair is None:
        return CachedSession(player_id, SessionRevoked, {})
    row, account = pair
    refusal: type[Exception] | None = None
    if account.id != player_id or row.revoked_at is not None:
        refusal = SessionRevoked
    elif account.banned:
        refusal = PlayerBanned
    elif row.expires_at <= ident.clock.now():
        refusal = SessionRevoked
    return CachedSession(account.id, refusal, player_profile(account))


async def validate_player_token(
    factory: async_sessionmaker[AsyncSession], ident: Identity, *, player_token: str
) -> Validated:
    claims = ident.tokens.verify(player_token)
    state = ident.caches.sessions.get(claims.session_id)
    if state is None:
        state = await _load_session(factory, ident, claims.session_id, claims.player_id)
        ident.caches.sessions.put(claims.session_id, state)
    if state.refusal is not None:
        raise state.refusal()
    return Validated(state.player, claims)
