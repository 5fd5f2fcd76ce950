"""Join tickets: a player's single-use pass to one server, so a token one server sees cannot be
replayed to another.

The player asks for a ticket for the server picked in the browser and hands it to that server,
which passes it to `POST /v1/validate` in place of an access token. Homeport accepts it once,
before it expires, and only from the key that registered that server. A ticket shown by any
other key is refused *without* being spent, so a server that captured it cannot burn it either.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.identity.errors import PlayerBanned, SessionRevoked
from homeport.identity.models import Account, Session
from homeport.identity.service_keys import Caller
from homeport.identity.service_validate import player_profile
from homeport.registry.errors import JoinTicketInvalid, ServerNotFound, ServerNotJoinable
from homeport.registry.models import JoinTicket, Server
from homeport.registry.schemas import ServerState
from homeport.registry.service import get_live

PREFIX = "hp_jt_"


def is_ticket(token: str) -> bool:
    return token.startswith(PREFIX)


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedTicket:
    ticket: str
    server: Server
    expires_at: datetime


async def issue(
    session: AsyncSession,
    clock: Clock,
    *,
    ttl_seconds: int,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    server_id: uuid.UUID,
) -> IssuedTicket:
    server = await get_live(session, clock, server_id)
    if server.state == ServerState.DRAINING or server.players >= server.max_players:
        raise ServerNotJoinable()
    now = clock.now()
    ticket = PREFIX + secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=ttl_seconds)
    session.add(
        JoinTicket(
            ticket_hash=_hash(ticket),
            server_id=server.id,
            account_id=account_id,
            session_id=session_id,
            created_at=now,
            expires_at=expires,
        )
    )
    try:
        await session.flush()
    except IntegrityError as exc:  # the server deregistered or expired in the meantime
        raise ServerNotFound() from exc
    return IssuedTicket(ticket, server, expires)


@dataclass(frozen=True, slots=True)
class Admitted:
    player: dict[str, object]
    account_id: uuid.UUID
    session_id: uuid.UUID
    session_expires_at: datetime
    server_id: uuid.UUID


async def redeem(
    session: AsyncSession,
    clock: Clock,
    caller: Caller,
    *,
    ticket: str,
    server_id: uuid.UUID | None,
) -> Admitted:
    """Spend the ticket for the server that owns it; who the player is."""
    now = clock.now()
    row = await session.get(JoinTicket, _hash(ticket))
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise JoinTicketInvalid()
    server = await session.get(Server, row.server_id)
    if (
        server is None
        or server.key_id != caller.key_id
        or (server_id is not None and server_id != server.id)
    ):
        raise JoinTicketInvalid()
    spent = await session.execute(
        update(JoinTicket)
        .where(JoinTicket.ticket_hash == row.ticket_hash, JoinTicket.used_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise JoinTicketInvalid()  # another request spent it first
    pair = (
        await session.execute(
            select(Session, Account)
            .join(Account, Account.id == Session.account_id)
            .where(Session.id == row.session_id)
        )
    ).one_or_none()
    if pair is None:
        raise SessionRevoked()
    player_session, account = pair
    if player_session.revoked_at is not None or player_session.expires_at <= now:
        raise SessionRevoked()
    if account.banned:
        raise PlayerBanned()
    return Admitted(
        player_profile(account), account.id, player_session.id, player_session.expires_at, server.id
    )
