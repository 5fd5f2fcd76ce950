"""Fleet administration: define, scale and delete fleets, list their servers, ask one to drain.

Starting and stopping processes is the agent's work (`homeport.fleet.agent`); these functions
only change what the database says should be, in the caller's transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.db.session import retry_on_conflict
from homeport.errors import Conflict, Unavailable
from homeport.fleet import providers
from homeport.fleet.errors import (
    FleetCommandsForbidden,
    FleetNotFound,
    GameServerNotFound,
    ServerNotDrainable,
    ServerNotReachable,
)
from homeport.fleet.models import Fleet, GameServer
from homeport.fleet.spec import ENDED_STATES, LIVE_STATES, FleetSpec, ScalingPolicy
from homeport.fleet.spec import GameServerState as S
from homeport.registry.models import Server
from homeport.settings import Settings

DRAIN = {"action": "drain"}
log = logging.getLogger("homeport.fleet")


class FleetNotEmpty(Conflict):
    slug = "fleet-not-empty"
    title = "The fleet still has servers: scale it to 0 and let them drain first"


@dataclass(frozen=True)
class FleetView:
    name: str
    spec: FleetSpec
    source: str
    counts: dict[str, int]
    crash_streak: int


def _spec(row: Fleet) -> FleetSpec:
    return FleetSpec.model_validate(row.spec)


async def sync_configured(session: AsyncSession, clock: Clock, settings: Settings) -> None:
    """Store the fleets of homeport.toml; the file wins over the API for the names it has."""
    now = clock.now()
    for name, spec in settings.fleets.items():
        row = await session.get(Fleet, name)
        data = spec.model_dump(mode="json")
        if row is None:
            session.add(
                Fleet(
                    name=name,
                    spec=data,
                    source="config",
                    crash_streak=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        elif row.spec != data or row.source != "config":
            # `homeport fleet scale` keeps its fixed size across restarts.
            replicas = _spec(row).scaling.replicas
            scaling = spec.scaling.model_copy(update={"replicas": replicas})
            row.spec = spec.model_copy(update={"scaling": scaling}).model_dump(mode="json")
            row.source, row.updated_at = "config", now
    await session.flush()


async def store_configured(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, settings: Settings
) -> None:
    """Every process stores homeport.toml's fleets at start, racing the others to insert them."""
    await retry_on_conflict(sessions, lambda session: sync_configured(session, clock, settings))


async def _counts(session: AsyncSession, names: list[str]) -> dict[str, Counter[str]]:
    rows = await session.execute(
        select(GameServer.fleet, GameServer.state, func.count())
        .where(GameServer.fleet.in_(names), GameServer.state.in_([s.value for s in LIVE_STATES]))
        .group_by(GameServer.fleet, GameServer.state)
    )
    counts: dict[str, Counter[str]] = {name: Counter() for name in names}
    for fleet, state, count in rows.all():
        counts[fleet][state] = count
    return counts


async def _counted_elsewhere(
    session: AsyncSession, rows: list[Fleet], counts: dict[str, Counter[str]]
) -> None:
    """Servers that are no rows here (an Agones Fleet's GameServers) are counted where they
    run. A cluster that does not answer leaves its fleet's counts empty instead of failing the
    listing: the fleet must stay listable, and its definition fixable, while it is down."""
    for row in rows:
        spec = _spec(row)
        if spec.provider == "local":
            continue
        try:
            found = await providers.for_spec(spec).servers(
                session, row.name, spec, include_ended=False
            )
        except Unavailable as exc:
            log.warning("fleet %s: cannot count its servers: %s", row.name, exc.detail)
            continue
        if found is not None:
            counts[row.name] = Counter(server.state for server in found)


def _view(row: Fleet, counts: Counter[str]) -> FleetView:
    return FleetView(row.name, _spec(row), row.source, dict(counts), row.crash_streak)


async def list_fleets(session: AsyncSession) -> list[FleetView]:
    rows = list(await session.scalars(select(Fleet).order_by(Fleet.name)))
    counts = await _counts(session, [row.name for row in rows])
    await _counted_elsewhere(session, rows, counts)
    return [_view(row, counts[row.name]) for row in rows]


async def get_fleet(session: AsyncSession, name: str) -> FleetView:
    row = await session.get(Fleet, name)
    if row is None:
        raise FleetNotFound()
    counts = await _counts(session, [name])
    await _counted_elsewhere(session, [row], counts)
    return _view(row, counts[name])


async def put_fleet(
    session: AsyncSession, clock: Clock, settings: Settings, name: str, spec: FleetSpec
) -> tuple[FleetView, bool]:
    """Create or replace a fleet through the API; (the fleet, whether it is new)."""
    row = await session.get(Fleet, name)
    if not settings.fleet_admin_commands:
        old = None if row is None else _spec(row)
        if old is None or _what_runs(old) != _what_runs(spec):
            raise FleetCommandsForbidden()
    now = clock.now()
    data = spec.model_dump(mode="json")
    if row is None:
        row = Fleet(
            name=name, spec=data, source="api", crash_streak=0, created_at=now, updated_at=now
        )
        session.add(row)
        await session.flush()
        return _view(row, Counter()), True
    row.spec, row.updated_at = data, now
    return await get_fleet(session, name), False


def _what_runs(spec: FleetSpec) -> tuple[object, ...]:
    """What only the operator may choose: the programs run here, and the files read to reach a
    Kubernetes cluster."""
    cluster = None if spec.agones is None else (spec.agones.kubeconfig, spec.agones.context)
    return (spec.command, spec.working_dir, spec.environment, spec.wrapper, spec.provider, cluster)


async def delete_fleet(session: AsyncSession, name: str) -> None:
    row = await session.get(Fleet, name)
    if row is None:
        raise FleetNotFound()
    if sum((await _counts(session, [name]))[name].values()):
        raise FleetNotEmpty()
    await session.delete(row)


async def scale(session: AsyncSession, clock: Clock, name: str, replicas: int | None) -> FleetView:
    """Fix the fleet's size (None: back to its buffer policy). Surplus servers drain only
    when empty; the agent applies it on its next pass."""
    row = await session.get(Fleet, name)
    if row is None:
        raise FleetNotFound()
    spec = _spec(row)
    scaling = ScalingPolicy.model_validate({**spec.scaling.model_dump(), "replicas": replicas})
    row.spec = spec.model_copy(update={"scaling": scaling}).model_dump(mode="json")
    row.updated_at = clock.now()
    return await get_fleet(session, name)


async def list_servers(
    session: AsyncSession, fleet: str | None, *, include_ended: bool = False
) -> list[GameServer]:
    query = select(GameServer).order_by(GameServer.created_at)
    if fleet is not None:
        row = await session.get(Fleet, fleet)
        if row is None:
            raise FleetNotFound()
        spec = _spec(row)
        elsewhere = await providers.for_spec(spec).servers(
            session, fleet, spec, include_ended=include_ended
        )
        if elsewhere is not None:
            return elsewhere
        query = query.where(GameServer.fleet == fleet)
    if not include_ended:
        query = query.where(GameServer.state.in_([s.value for s in LIVE_STATES]))
    return list(await session.scalars(query))


async def get_server(session: AsyncSession, fleet: str | None, server_id: uuid.UUID) -> GameServer:
    row = await session.get(GameServer, server_id)
    if row is None and fleet is not None:
        fleet_row = await session.get(Fleet, fleet)
        if fleet_row is not None:
            spec = _spec(fleet_row)
            row = await providers.for_spec(spec).server(session, fleet, spec, server_id)
    if row is None or (fleet is not None and row.fleet != fleet):
        raise GameServerNotFound()
    return row


async def find_server(session: AsyncSession, server_id: uuid.UUID) -> GameServer:
    """A server by its id alone, whatever its fleet: a row here, or else a GameServer of a
    fleet that runs elsewhere, each such fleet asked in turn: `homeport fleet drain` is given
    an id and nothing else."""
    row = await session.get(GameServer, server_id)
    if row is not None:
        return row
    for fleet_row in await session.scalars(select(Fleet).order_by(Fleet.name)):
        spec = _spec(fleet_row)
        if spec.provider == "local":
            continue
        row = await providers.for_spec(spec).server(session, fleet_row.name, spec, server_id)
        if row is not None:
            return row
    raise GameServerNotFound()


async def request_drain(
    session: AsyncSession, clock: Clock, row: GameServer, *, reason: str
) -> GameServer:
    """Ask a server to finish: it sees `"action": "drain"` in its next heartbeat answer; the
    agent sends SIGTERM after the fleet's notice and SIGKILL after its grace period. Another
    provider's server (an Agones GameServer, never stored here) hears it the same way, through
    the registry entry it was listed with, and stops itself; with no entry, nothing would."""
    if row.provider != "local":
        told = await session.execute(
            update(Server)
            .where(Server.id == row.id, Server.lease_expires_at > clock.now())
            .values(directive={**DRAIN, "allocation": (row.allocation or None)})
        )
        if told.rowcount != 1:  # type: ignore[attr-defined]
            raise ServerNotReachable()
        row.state, row.reason = S.DRAINING.value, reason
        return row
    state = S(row.state)
    if state in ENDED_STATES:
        raise ServerNotDrainable()
    if state is S.SCHEDULED:  # never started: nothing to drain
        row.state, row.reason, row.ended_at = S.STOPPED.value, reason, clock.now()
        return row
    if state not in (S.DRAINING, S.UNHEALTHY):
        row.state, row.reason, row.drain_at = S.DRAINING.value, reason, clock.now()
    await session.execute(
        update(Server)
        .where(Server.id == row.id)
        .values(directive={**DRAIN, "allocation": (row.allocation or None)})
    )
    return row


async def release(
    session: AsyncSession, clock: Clock, server_id: uuid.UUID, *, reason: str
) -> None:
    """Let go of an allocated server nobody will join. A local one is drained like any other.
    Another provider's (an Agones GameServer) has no row here: its registry entry, which the
    allocation named, is the one way to reach it; it drains, and its SDK Shutdown lets Agones
    replace it. Without either, the server would stay allocated to a match that never starts."""
    row = await session.get(GameServer, server_id)
    if row is None:
        await session.execute(update(Server).where(Server.id == server_id).values(directive=DRAIN))
    elif S(row.state) not in ENDED_STATES:  # one that already ended needs nothing
        await request_drain(session, clock, row, reason=reason)
