"""Taking, pruning and reading the samples behind the dashboard's charts.

One leader-only loop (see `homeport.background`) takes a sample every
`dashboard_sample_interval` seconds and drops those older than `RETENTION`, so the table stays
about a day long whatever the number of replicas.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.dashboard.models import StatsSample
from homeport.fleet import service as fleet_service
from homeport.matchmaking import queue_admin
from homeport.registry.service import live_totals

RETENTION = timedelta(days=1)


async def take_sample(session: AsyncSession, clock: Clock) -> StatsSample:
    totals = await live_totals(session, clock)
    fleets: Counter[str] = Counter()
    for fleet in await fleet_service.list_fleets(session):
        fleets.update(fleet.counts)
    waits = await queue_admin.searching_waits(session, clock)
    sample = StatsSample(
        taken_at=clock.now(),
        servers=totals.servers,
        servers_by_state=totals.by_state,
        fleet_by_state=dict(fleets),
        players_online=totals.players,
        tickets_searching=sum(w.searching for w in waits.values()),
    )
    session.add(sample)
    await session.flush()
    return sample


async def prune_samples(session: AsyncSession, clock: Clock) -> int:
    """Delete samples older than `RETENTION`; how many."""
    result = await session.execute(
        delete(StatsSample).where(StatsSample.taken_at < clock.now() - RETENTION)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def samples_since(session: AsyncSession, since: datetime) -> list[StatsSample]:
    query = select(StatsSample).where(StatsSample.taken_at >= since)
    return list(await session.scalars(query.order_by(StatsSample.taken_at)))
