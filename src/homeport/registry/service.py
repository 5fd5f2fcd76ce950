"""Registering, reading and removing servers; purging those whose lease ran out.

A server is live while its lease is in the future. Every read filters on the lease, so a server
that stops heartbeating vanishes from the browser at once; `purge_expired` (a leader-only loop)
deletes the rows afterwards and records their expiry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.errors import UnprocessableContent
from homeport.events.bus import emit
from homeport.identity.service_keys import Caller
from homeport.netaddr import is_ip
from homeport.registry.errors import NotServerOwner, RegistrationRaced, ServerNotFound
from homeport.registry.models import JoinTicket, Server
from homeport.registry.schemas import RegisterRequest
from homeport.settings import Settings

TOPIC = "registry"
PURGE_BATCH = 500


@dataclass(frozen=True, slots=True)
class Lease:
    """The heartbeat rhythm told to servers, from settings."""

    interval: int
    seconds: int

    @classmethod
    def of(cls, settings: Settings) -> Lease:
        interval = settings.registry_heartbeat_interval
        return cls(interval, interval * settings.registry_lease_intervals)

    def expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.seconds)


def encode_tags(tags: list[str]) -> str:
    unique = list(dict.fromkeys(tags))
    return f"|{'|'.join(unique)}|" if unique else ""


def decode_tags(stored: str) -> list[str]:
    return [t for t in stored.split("|") if t]


def _check_metadata(settings: Settings, body: RegisterRequest) -> None:
    limit = settings.registry_metadata_max_bytes
    for field in ("metadata", "private_metadata"):
        if len(orjson.dumps(getattr(body, field))) > limit:
            raise UnprocessableContent(
                errors=[
                    {
                        "loc": ["body", field],
                        "msg": f"Must be at most {limit} bytes as JSON",
                        "type": "too_long",
                    }
                ]
            )


def _event_data(row: Server, **extra: Any) -> dict[str, Any]:
    return {
        "address": row.address,
        "port": row.port,
        "state": row.state,
        "key_id": str(row.key_id),
        **extra,
    }


async def register(
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    caller: Caller,
    body: RegisterRequest,
    *,
    client_address: str,
) -> Server:
    """Register a server; the same key registering the same address:port replaces its entry."""
    _check_metadata(settings, body)
    address = body.address or client_address
    if not body.address and not is_ip(client_address):
        raise UnprocessableContent(
            errors=[
                {
                    "loc": ["body", "address"],
                    "msg": "The request's source address is unknown: send the address",
                    "type": "missing",
                }
            ]
        )
    now = clock.now()
    # A fleet server's key is bound to its id, so registering again is the same process again
    # (a retried request, a lapsed lease): its entry is updated in place, and what was handed
    # out for it stays good (join tickets, the fleet's allocation). Another key registering the
    # same address and port anew replaces the entry with a new one.
    same = (
        Server.id == caller.server_id
        if caller.server_id is not None
        else (Server.key_id == caller.key_id)
        & (Server.address == address)
        & (Server.port == body.port)
    )
    old = await session.scalar(select(Server).where(same))
    if old is not None and caller.server_id is not None:
        row = old
        row.heartbeat_at = now
        row.lease_expires_at = Lease.of(settings).expiry(now)
    else:
        if old is not None:
            await _remove(session, clock, old, reason="replaced")
        row = Server(
            id=caller.server_id or uuid.uuid4(),
            key_id=caller.key_id,
            player_ids=[],
            created_at=now,
            heartbeat_at=now,
            lease_expires_at=Lease.of(settings).expiry(now),
        )
        session.add(row)
    _describe(row, body, address)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise RegistrationRaced() from exc
    await emit(
        session,
        clock,
        topic=TOPIC,
        kind="server.registered",
        subject=str(row.id),
        data=_event_data(row, name=row.name),
    )
    return row


def _describe(row: Server, body: RegisterRequest, address: str) -> None:
    """What a registration says about its server."""
    row.name, row.address, row.port = body.name, address, body.port
    row.map, row.mode, row.region, row.version = body.map, body.mode, body.region, body.version
    row.players, row.max_players = body.players, body.max_players
    row.tags = encode_tags(body.tags)
    row.game_metadata, row.private_metadata = body.metadata, body.private_metadata
    row.password_protected = body.password_protected
    row.require_join_ticket = body.require_join_ticket
    row.state = body.state.value


async def get_live(session: AsyncSession, clock: Clock, server_id: uuid.UUID) -> Server:
    row = await session.get(Server, server_id)
    if row is None or row.lease_expires_at <= clock.now():
        raise ServerNotFound()
    return row


@dataclass(frozen=True)
class LiveTotals:
    """What the registry holds right now: live servers by state, and their players."""

    by_state: dict[str, int]
    players: int

    @property
    def servers(self) -> int:
        return sum(self.by_state.values())


async def live_totals(session: AsyncSession, clock: Clock) -> LiveTotals:
    rows = await session.execute(
        select(Server.state, func.count(), func.coalesce(func.sum(Server.players), 0))
        .where(Server.lease_expires_at > clock.now())
        .group_by(Server.state)
    )
    by_state: dict[str, int] = {}
    players = 0
    for state, count, playing in rows.all():
        by_state[state] = int(count)
        players += int(playing)
    return LiveTotals(by_state, players)


async def deregister(
    session: AsyncSession, clock: Clock, caller: Caller, server_id: uuid.UUID
) -> None:
    """The graceful shutdown path: the server leaves the list at once."""
    row = await session.get(Server, server_id)
    if row is None:
        raise ServerNotFound()
    if row.key_id != caller.key_id and not caller.is_admin:
        raise NotServerOwner()
    await _remove(session, clock, row, reason="deregistered")


async def _remove(session: AsyncSession, clock: Clock, row: Server, *, reason: str) -> None:
    """The entry leaves the list, and the event says why."""
    await emit(
        session,
        clock,
        topic=TOPIC,
        kind="server.deregistered",
        subject=str(row.id),
        data=_event_data(row, reason=reason),
    )
    await session.execute(delete(Server).where(Server.id == row.id))


async def purge_expired(session: AsyncSession, clock: Clock) -> int:
    """Delete a batch of servers whose lease ran out, recording each expiry; the count.

    The DELETE repeats the lease test and reports what it removed: a server renewed or
    replaced after the SELECT (a heartbeat stamped by a replica whose clock runs a little
    behind, a re-registration) stays, and gets no `server.expired` event."""
    now = clock.now()
    rows = list(
        await session.scalars(
            select(Server)
            .where(Server.lease_expires_at <= now)
            .order_by(Server.lease_expires_at)
            .limit(PURGE_BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    if rows:
        deleted = set(
            await session.scalars(
                delete(Server)
                .where(Server.id.in_([r.id for r in rows]), Server.lease_expires_at <= now)
                .returning(Server.id)
                .execution_options(synchronize_session=False)
            )
        )
        rows = [row for row in rows if row.id in deleted]
    for row in rows:
        await emit(
            session,
            clock,
            topic=TOPIC,
            kind="server.expired",
            subject=str(row.id),
            data=_event_data(row, heartbeat_at=row.heartbeat_at.isoformat()),
        )
    await session.execute(delete(JoinTicket).where(JoinTicket.expires_at <= now))
    return len(rows)
