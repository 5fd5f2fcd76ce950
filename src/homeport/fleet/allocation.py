"""Handing a ready server to one caller: one atomic update, so two allocations running at the
same moment, in any processes, never get the same server.

A server is allocatable when its fleet row says starting or ready and its registry entry says
`ready`, is live and has no players: the registry learns readiness first (the server tells it),
so allocation does not wait for the fleet agent's next pass to copy it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.db.engine import SqliteWriterTurn
from homeport.db.session import unit_of_work
from homeport.fleet import providers
from homeport.fleet.errors import FleetNotFound, NoServerAvailable
from homeport.fleet.models import Fleet, GameServer
from homeport.fleet.spec import LIVE_STATES, FleetSpec
from homeport.fleet.spec import GameServerState as S
from homeport.observability.instruments import count_allocation, outcome
from homeport.registry.models import Server
from homeport.timefmt import rfc3339

POLL_SECONDS = 0.1
_ALLOCATABLE = (S.STARTING.value, S.READY.value)


@dataclass(frozen=True)
class Selector:
    region: str | None = None
    version: str | None = None
    labels: dict[str, str] | None = None


@dataclass(frozen=True)
class Request:
    fleet: str
    selector: Selector
    match_id: str | None = None
    players: tuple[str, ...] = ()
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Allocated:
    server_id: uuid.UUID
    fleet: str
    address: str
    port: int
    region: str
    version: str
    labels: dict[str, str]
    allocation: dict[str, Any]


async def try_allocate(session: AsyncSession, clock: Clock, request: Request) -> Allocated | None:
    """Allocate one ready server in the caller's transaction, or None when none matches."""
    now = clock.now()
    query = (
        select(GameServer.id, GameServer.labels)
        .join(Server, Server.id == GameServer.id)
        .where(
            GameServer.fleet == request.fleet,
            GameServer.state.in_(_ALLOCATABLE),
            Server.state == "ready",
            Server.players == 0,
            Server.lease_expires_at > now,
        )
        .order_by(GameServer.created_at)
        .limit(1)
    )
    selector = request.selector
    for key, value in sorted((selector.labels or {}).items()):
        query = query.where(GameServer.label_index.contains(f"|{key}={value}|", autoescape=True))
    if selector.region is not None:
        query = query.where(GameServer.region == selector.region)
    if selector.version is not None:
        query = query.where(Server.version == selector.version)
    if session.get_bind().dialect.name == "postgresql":
        # Rows another allocation holds are skipped, not waited for: a hundred concurrent
        # allocations each take a different server instead of queueing on the first. One row
        # at a time: every row a SELECT ... FOR UPDATE returns stays locked to the end.
        query = query.with_for_update(of=GameServer, skip_locked=True)
    for server_id, labels in (await session.execute(query)).all():
        allocation = {
            "allocation_id": str(uuid.uuid4()),
            "match_id": request.match_id,
            "players": list(request.players),
            "metadata": request.metadata or {},
            "allocated_at": rfc3339(now),
        }
        claimed = await session.execute(
            update(GameServer)
            .where(GameServer.id == server_id, GameServer.state.in_(_ALLOCATABLE))
            .values(
                state=S.ALLOCATED.value,
                allocated_at=now,
                ready_at=func.coalesce(GameServer.ready_at, now),
                allocation=allocation,
                empty_since=now,
            )
            .returning(GameServer.address, GameServer.port, GameServer.region, GameServer.version)
        )
        row = claimed.first()
        if row is None:  # taken between the read and the update (SQLite cannot skip locks)
            continue
        await session.execute(
            update(Server)
            .where(Server.id == server_id)
            .values(directive={"allocation": allocation}, state="in_match")
        )
        address, port, region, version = row
        assert port is not None  # given when the server started
        return Allocated(
            server_id, request.fleet, address, port, region, version, labels, allocation
        )
    return None


async def _ask_for_one(session: AsyncSession, clock: Clock, fleet: str) -> None:
    """Schedule one more server for a waiting allocation, unless the fleet is full. The agent
    starts it; if another server frees up first, the autoscaler trims the surplus later."""
    row = await session.get(Fleet, fleet)
    if row is None:
        raise FleetNotFound()
    spec = FleetSpec.model_validate(row.spec)
    live = await session.scalar(
        select(func.count())
        .select_from(GameServer)
        .where(GameServer.fleet == fleet, GameServer.state.in_([s.value for s in LIVE_STATES]))
    )
    if (live or 0) >= spec.scaling.max_servers:
        return
    session.add(new_server(fleet, spec, clock, reason="requested by an allocation"))


def label_index(labels: dict[str, str]) -> str:
    """`|k=v|k2=v2|`: a label selector is then one portable LIKE per label."""
    return "|" + "".join(f"{k}={v}|" for k, v in sorted(labels.items()))


def new_server(fleet: str, spec: FleetSpec, clock: Clock, *, reason: str) -> GameServer:
    return GameServer(
        id=uuid.uuid4(),
        fleet=fleet,
        state=S.SCHEDULED.value,
        provider=spec.provider,
        address=spec.address,
        region=spec.region,
        version=spec.version,
        labels=dict(spec.labels),
        label_index=label_index(spec.labels),
        players=0,
        reason=reason,
        created_at=clock.now(),
    )


class _SqliteTurns:
    """Allocations on SQLite take turns: one at a time in a process (an asyncio lock, first
    come first served), and across processes on an `flock` the kernel hands over at once.
    Left to SQLite's busy handler, concurrent allocations sleep and retry, and the unlucky
    ones wait a second or more (see `db.engine.SqliteWriterTurn`)."""

    def __init__(self) -> None:
        self._turns: dict[str, tuple[asyncio.Lock, SqliteWriterTurn]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, engine: AsyncEngine) -> AsyncIterator[None]:
        if engine.dialect.name != "sqlite":
            yield
            return
        url = engine.url.render_as_string(hide_password=False)
        if url not in self._turns:
            self._turns[url] = (asyncio.Lock(), SqliteWriterTurn.for_url(url))
        lock, writer = self._turns[url]
        async with lock:
            await asyncio.to_thread(writer.__enter__)
            try:
                yield
            finally:
                writer.__exit__()


_sqlite_turns = _SqliteTurns()


async def allocate(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    request: Request,
    *,
    wait: float,
) -> Allocated:
    """Allocate a ready server of the fleet, from wherever its provider runs them; if none is
    ready, wait up to `wait` seconds for one."""
    async with sessions() as session:
        row = await session.get(Fleet, request.fleet)
        spec = None if row is None else FleetSpec.model_validate(row.spec)
    if spec is None:
        raise FleetNotFound()
    with outcome(count_allocation(request.fleet)):
        return await providers.for_spec(spec).allocate(sessions, clock, spec, request, wait=wait)


async def allocate_row(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    request: Request,
    *,
    wait: float,
) -> Allocated:
    """A local fleet's allocation: a ready row; if none is, ask for one and wait up to `wait`
    seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    asked = False
    engine = sessions.kw["bind"]
    while True:
        async with _sqlite_turns.turn(engine), unit_of_work(sessions) as session:
            if await session.get(Fleet, request.fleet) is None:
                raise FleetNotFound()
            found = await try_allocate(session, clock, request)
            if found is None and not asked and wait > 0:
                await _ask_for_one(session, clock, request.fleet)
                asked = True
        if found is not None:
            return found
        if loop.time() >= deadline:
            raise NoServerAvailable()
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - loop.time())))
