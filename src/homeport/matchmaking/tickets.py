"""Tickets: a party asks to play, learns its match and server, or gives up.

A ticket is `searching` until the matcher puts it in a match (`matched`), then `allocated`
once that match has a server; or it ends `timed_out`, `cancelled` or `failed`. Only searching
and matched tickets are active, and a player has at most one of those (`Searching`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.events.bus import emit
from homeport.identity.models import Account
from homeport.matchmaking import ratings
from homeport.matchmaking.errors import (
    AlreadySearching,
    PartyInvalid,
    QueueNotFound,
    TicketNotCancellable,
    TicketNotFound,
)
from homeport.matchmaking.models import Match, Queue, Searching, Ticket
from homeport.matchmaking.queues import QueueSpec
from homeport.registry import join_tickets
from homeport.registry.errors import ServerNotFound, ServerNotJoinable
from homeport.settings import Settings
from homeport.timefmt import rfc3339

TOPIC = "matchmaking"


class TicketState(StrEnum):
    SEARCHING = "searching"
    MATCHED = "matched"
    ALLOCATED = "allocated"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    FAILED = "failed"


ACTIVE = (TicketState.SEARCHING.value, TicketState.MATCHED.value)


@dataclass(frozen=True)
class NewTicket:
    queue: str
    party: list[uuid.UUID]
    properties: dict[str, str]
    latencies: dict[str, float]


async def queue_spec(session: AsyncSession, name: str) -> QueueSpec:
    row = await session.get(Queue, name)
    if row is None:
        raise QueueNotFound()
    return QueueSpec.model_validate(row.spec)


async def announce(session: AsyncSession, clock: Clock, ticket: Ticket) -> None:
    """Tell every process (long polls, WebSockets) that this ticket changed."""
    await emit(
        session,
        clock,
        topic=TOPIC,
        kind=f"ticket.{ticket.state}",
        subject=str(ticket.id),
        data={"players": ticket.players},
    )


async def create(
    session: AsyncSession, clock: Clock, settings: Settings, leader: uuid.UUID, new: NewTicket
) -> Ticket:
    spec = await queue_spec(session, new.queue)
    members = list(dict.fromkeys(new.party))
    if leader in members or len(members) + 1 > spec.party_limit:
        raise PartyInvalid()
    players = [leader, *members]
    if members:
        known = set(
            await session.scalars(
                select(Account.id).where(Account.id.in_(members), Account.banned.is_(False))
            )
        )
        if known != set(members):
            raise PartyInvalid()
    rated = await ratings.ratings_of(session, settings, spec.pool(new.queue), players)
    now = clock.now()
    ticket = Ticket(
        id=uuid.uuid4(),
        queue=new.queue,
        leader_id=leader,
        players=[str(p) for p in players],
        skill=sum(rated.values()) / len(rated),
        properties=new.properties,
        latencies=new.latencies,
        state=TicketState.SEARCHING.value,
        attempts=0,
        reason="",
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=spec.ticket_timeout),
    )
    session.add(ticket)
    await session.flush()
    session.add_all(Searching(player_id=p, ticket_id=ticket.id) for p in players)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise AlreadySearching() from exc
    await announce(session, clock, ticket)
    return ticket


async def get_own(
    session: AsyncSession, ticket_id: uuid.UUID, player: uuid.UUID, *, lock: bool = False
) -> Ticket:
    """A ticket the player is in (its leader or a party member); `lock` before changing it,
    so a change racing the matcher's sees its outcome instead of overwriting it."""
    row = await session.get(Ticket, ticket_id, with_for_update=lock)
    if row is None or str(player) not in row.players:
        raise TicketNotFound()
    return row


async def end(
    session: AsyncSession, clock: Clock, ticket: Ticket, state: TicketState, reason: str
) -> None:
    ticket.state, ticket.reason, ticket.updated_at = state.value, reason[:200], clock.now()
    await session.execute(delete(Searching).where(Searching.ticket_id == ticket.id))
    await announce(session, clock, ticket)


async def cancel(session: AsyncSession, clock: Clock, ticket: Ticket) -> Ticket:
    if ticket.state not in ACTIVE:
        raise TicketNotCancellable()
    await end(session, clock, ticket, TicketState.CANCELLED, "cancelled by a player")
    return ticket


async def view(
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    ticket: Ticket,
    *,
    player: uuid.UUID,
    player_session: uuid.UUID,
) -> dict[str, Any]:
    """The ticket as the player sees it; once allocated, with a connect token for the server:
    a single-use join ticket bound to that server, made for this player now."""
    out: dict[str, Any] = {
        "id": str(ticket.id),
        "queue": ticket.queue,
        "state": ticket.state,
        "players": ticket.players,
        "properties": ticket.properties,
        "latencies": ticket.latencies,
        "reason": ticket.reason or None,
        "created_at": rfc3339(ticket.created_at),
        "expires_at": rfc3339(ticket.expires_at),
        "match_id": None if ticket.match_id is None else str(ticket.match_id),
        "server": None,
        "connect_token": None,
        "team": None,
    }
    if ticket.state != TicketState.ALLOCATED.value or ticket.match_id is None:
        return out
    match = await session.get(Match, ticket.match_id)
    if match is None or match.server_id is None or match.port is None:
        return out
    out["server"] = {"id": str(match.server_id), "address": match.address, "port": match.port}
    out["team"] = next((i for i, team in enumerate(match.teams) if str(player) in team), None)
    try:
        async with session.begin_nested():  # a failed insert must not spoil the transaction
            issued = await join_tickets.issue(
                session,
                clock,
                ttl_seconds=settings.matchmaking_connect_ttl,
                account_id=player,
                session_id=player_session,
                server_id=match.server_id,
            )
    except (ServerNotFound, ServerNotJoinable):
        return out  # the server is gone or full: the address alone tells the story
    out["connect_token"] = issued.ticket
    out["connect_token_expires_at"] = rfc3339(issued.expires_at)
    return out
