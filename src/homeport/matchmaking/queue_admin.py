"""Queues as stored: the ones from homeport.toml written at start, the admin API's, and how many
tickets each has searching."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.db.session import retry_on_conflict
from homeport.matchmaking.errors import QueueNotFound
from homeport.matchmaking.models import Queue, Ticket
from homeport.matchmaking.queues import QueueSpec
from homeport.matchmaking.tickets import ACTIVE, TicketState
from homeport.settings import Settings


@dataclass(frozen=True)
class QueueView:
    name: str
    spec: QueueSpec
    source: str
    searching: int


async def sync_configured(session: AsyncSession, clock: Clock, settings: Settings) -> None:
    now = clock.now()
    for name, spec in settings.matchmaking_queues.items():
        data = spec.model_dump(mode="json")
        row = await session.get(Queue, name)
        if row is None:
            session.add(
                Queue(name=name, spec=data, source="config", created_at=now, updated_at=now)
            )
        elif row.spec != data or row.source != "config":
            row.spec, row.source, row.updated_at = data, "config", now
    await session.flush()


async def store_configured(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, settings: Settings
) -> None:
    """Every process stores homeport.toml's queues at start, racing the others to insert them."""
    await retry_on_conflict(sessions, lambda session: sync_configured(session, clock, settings))


async def _searching(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(Ticket.queue, func.count()).where(Ticket.state.in_(ACTIVE)).group_by(Ticket.queue)
    )
    return {queue: int(count) for queue, count in rows.all()}


@dataclass(frozen=True)
class Waits:
    """How long a queue's searching tickets have waited so far (seconds)."""

    searching: int
    oldest: float
    median: float


async def searching_waits(session: AsyncSession, clock: Clock) -> dict[str, Waits]:
    """Per queue, the waits of tickets still searching (matched ones wait for a server, not for
    players, so they are left out)."""
    rows = await session.execute(
        select(Ticket.queue, Ticket.created_at).where(Ticket.state == TicketState.SEARCHING.value)
    )
    now = clock.now()
    waits: dict[str, list[float]] = {}
    for queue, created_at in rows.all():
        waits.setdefault(queue, []).append(max(0.0, (now - created_at).total_seconds()))
    return {
        queue: Waits(len(found), max(found), statistics.median(found))
        for queue, found in waits.items()
    }


async def list_queues(session: AsyncSession) -> list[QueueView]:
    counts = await _searching(session)
    rows = await session.scalars(select(Queue).order_by(Queue.name))
    return [
        QueueView(r.name, QueueSpec.model_validate(r.spec), r.source, counts.get(r.name, 0))
        for r in rows
    ]


async def put_queue(
    session: AsyncSession, clock: Clock, name: str, spec: QueueSpec
) -> tuple[QueueView, bool]:
    now = clock.now()
    data = spec.model_dump(mode="json")
    row = await session.get(Queue, name)
    if row is None:
        session.add(Queue(name=name, spec=data, source="api", created_at=now, updated_at=now))
        await session.flush()
        return QueueView(name, spec, "api", 0), True
    row.spec, row.updated_at = data, now
    return QueueView(name, spec, row.source, (await _searching(session)).get(name, 0)), False


async def delete_queue(session: AsyncSession, clock: Clock, name: str) -> None:
    """Delete a queue; its searching tickets end as cancelled."""
    from homeport.matchmaking.tickets import end

    row = await session.get(Queue, name)
    if row is None:
        raise QueueNotFound()
    for ticket in await session.scalars(
        select(Ticket).where(Ticket.queue == name, Ticket.state.in_(ACTIVE))
    ):
        await end(session, clock, ticket, TicketState.CANCELLED, "the queue was deleted")
    await session.delete(row)
