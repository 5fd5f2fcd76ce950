"""The fleet agent: the one process that starts, watches and stops local server processes.

It holds a leader lock (see `homeport.leader`), so with several workers or replicas exactly
one agent runs the machine's servers. Each pass it reads every live server with its registry
entry, takes each one's next step (`lifecycle.step`), lets the autoscaler size every fleet and
then starts what is scheduled. `homeport serve` runs it beside the HTTP workers and drains
it first on SIGTERM, while the API still answers the servers' last saves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.db.engine import create_engine, create_sessionmaker
from homeport.db.session import unit_of_work
from homeport.fleet import autoscaler, providers, service
from homeport.fleet.allocation import new_server
from homeport.fleet.keys import issue_key, purge_ended, revoke_keys
from homeport.fleet.lifecycle import Do, Listing, Process, end, start_drain, step
from homeport.fleet.local import LaunchFailed, LocalProvider
from homeport.fleet.models import Fleet, GameServer
from homeport.fleet.provider import Launch, Provider
from homeport.fleet.spec import LIVE_STATES, FleetSpec
from homeport.fleet.spec import GameServerState as S
from homeport.leader import Leadership
from homeport.observability.instruments import count_process_exit, count_process_start
from homeport.registry.models import Server
from homeport.settings import Settings

log = logging.getLogger("homeport.fleet")
_LIVE = [s.value for s in LIVE_STATES]
PURGE_EVERY = 60
_RUNNING = [s.value for s in LIVE_STATES if s is not S.SCHEDULED]


class FleetAgent:
    def __init__(self, settings: Settings, clock: Clock, provider: Provider | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.engine = create_engine(settings)
        self.sessions = create_sessionmaker(self.engine)
        self.provider = provider or LocalProvider(settings)
        self.leadership = Leadership(settings, "fleet-agent")
        self.passes = 0
        self._wake = asyncio.Event()
        self._fleets_shrinking: dict[str, datetime] = {}  # Agones Fleets wanting fewer

    def wake(self) -> None:
        """Run the next pass now rather than after the interval."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Lead and reconcile until `stop` is set, then drain every server this agent runs."""
        loop = asyncio.get_running_loop()
        next_check = loop.time()
        try:
            while not stop.is_set():
                if loop.time() >= next_check:
                    next_check = loop.time() + self.settings.leader_check_interval
                    await self._lead()
                if self.leadership.held:
                    try:
                        await self.reconcile()
                    except Exception:
                        log.exception("fleet pass failed")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.fleet_reconcile_interval):
                        await _first(stop.wait(), self._wake.wait())
        finally:
            if self.leadership.held:
                await self.drain_all("Homeport is stopping")
            await self.close()

    async def _lead(self) -> None:
        try:
            if self.leadership.held:
                await self.leadership.still_held()
            elif await self.leadership.try_acquire():
                log.info("this process now runs the fleet")
                await self.take_over()
        except Exception:
            log.warning("fleet: cannot reach the leader lock", exc_info=True)

    async def take_over(self) -> None:
        """Start from a clean slate: store configured fleets, stop processes an earlier run left
        behind, and end the rows of processes no one runs any more."""
        await service.store_configured(self.sessions, self.clock, self.settings)
        grace = max([spec.grace_period for spec in self.settings.fleets.values()] or [30.0])
        reaped = await self.provider.reap_orphans(grace)
        async with unit_of_work(self.sessions) as session:
            rows = list(
                await session.scalars(
                    select(GameServer).where(
                        GameServer.state.in_(_RUNNING), GameServer.provider == self.provider.name
                    )
                )
            )
            now = self.clock.now()
            for row in rows:
                found = row.id in reaped.server_ids
                reason = "orphaned: stopped at start" if found else "lost: not running at start"
                end(row, S.STOPPED, reason, now)
            await self._retire(session, rows)
        if reaped.pids:
            log.warning("reaped %d orphaned server processes", len(reaped.pids))

    async def reconcile(self) -> None:
        self.passes += 1
        now = self.clock.now()
        beat = float(self.settings.registry_heartbeat_interval)
        terminate: list[uuid.UUID] = []
        kill: list[uuid.UUID] = []
        async with unit_of_work(self.sessions) as session:
            fleets = {row.name: row for row in await session.scalars(select(Fleet))}
            rows = list(
                await session.scalars(
                    select(GameServer)
                    .where(GameServer.state.in_(_LIVE), GameServer.provider == self.provider.name)
                    .order_by(GameServer.created_at)
                )
            )
            listings = await _listings(session, [row.id for row in rows])
            ended: list[GameServer] = []
            directives: list[uuid.UUID] = []
            for row in rows:
                fleet = fleets.get(row.fleet)
                spec = _spec(fleet)
                if spec is None and row.state not in (S.DRAINING.value, S.UNHEALTHY.value):
                    start_drain(row, S.DRAINING, "its fleet was deleted", now)
                process = Process(self.provider.running(row.id), self.provider.exit_code(row.id))
                did = step(
                    row,
                    listings.get(row.id),
                    process,
                    spec or _FALLBACK,
                    now,
                    heartbeat_interval=beat,
                )
                if did in (Do.END, Do.CRASH):
                    ended.append(row)
                    count_process_exit(row.fleet, "crashed" if did is Do.CRASH else "stopped")
                if did is Do.CRASH and fleet is not None:
                    _back_off(fleet, self.settings, now)
                elif did is Do.READY and fleet is not None:
                    fleet.crash_streak, fleet.start_after = 0, None
                elif did is Do.TERMINATE:
                    terminate.append(row.id)
                    directives.append(row.id)
                elif did is Do.KILL:
                    kill.append(row.id)
                elif did is Do.DIRECT:
                    directives.append(row.id)
            self._autoscale(session, fleets, rows, directives)
            if self.passes % PURGE_EVERY == 1:
                await purge_ended(session, self.clock, self.settings.fleet_retention)
            await _direct(session, [r for r in rows if r.id in set(directives)])
            await self._retire(session, ended)
        for server_id in terminate:
            self.provider.terminate(server_id)
        for server_id in kill:
            self.provider.kill(server_id)
        await self._start_scheduled()
        clusters = [spec for spec in map(_spec, fleets.values()) if spec and spec.agones]
        if clusters:  # sized where their servers run; the Kubernetes client loads only then
            from homeport.fleet.agones.scaling import size_fleets

            await size_fleets(clusters, self.clock.now(), self._fleets_shrinking)

    def _autoscale(
        self,
        session: AsyncSession,
        fleets: dict[str, Fleet],
        rows: list[GameServer],
        directives: list[uuid.UUID],
    ) -> None:
        by_fleet: dict[str, list[GameServer]] = defaultdict(list)
        for row in rows:
            by_fleet[row.fleet].append(row)
        clock_now = self.clock.now()
        for name, fleet in fleets.items():
            spec = FleetSpec.model_validate(fleet.spec)
            if spec.provider != self.provider.name:
                continue  # sized where its servers run (see `reconcile`)
            members = {row.id: row for row in by_fleet.get(name, [])}
            views = [
                autoscaler.ServerView(
                    row.id,
                    S(row.state),
                    row.players,
                    row.created_at,
                    row.empty_since,
                    row.allocated_at,
                )
                for row in members.values()
            ]
            plan = autoscaler.plan(spec.scaling, views, clock_now)
            for _ in range(plan.start):
                session.add(new_server(name, spec, self.clock, reason="autoscaler"))
            for server_id in plan.cancel:
                end(members[server_id], S.STOPPED, "cancelled: no longer needed", clock_now)
            for server_id, reason in plan.drain:
                start_drain(members[server_id], S.DRAINING, reason, clock_now)
                directives.append(server_id)

    async def _retire(self, session: AsyncSession, rows: list[GameServer]) -> None:
        """Ended servers: their keys stop working and they leave the server list at once."""
        if not rows:
            return
        ids = [row.id for row in rows]
        await revoke_keys(session, self.clock, [row.key_id for row in rows if row.key_id])
        await session.execute(delete(Server).where(Server.id.in_(ids)))
        for row in rows:
            self.provider.forget(row.id)
            log.info("server %s of fleet %s %s: %s", row.id, row.fleet, row.state, row.reason)

    async def _start_scheduled(self) -> None:
        now = self.clock.now()
        async with unit_of_work(self.sessions) as session:
            fleets = {row.name: row for row in await session.scalars(select(Fleet))}
            scheduled = list(
                await session.scalars(
                    select(GameServer)
                    .where(GameServer.state == S.SCHEDULED.value)
                    .order_by(GameServer.created_at)
                )
            )
            taken = set(
                await session.scalars(
                    select(GameServer.port).where(
                        GameServer.state.in_(_RUNNING), GameServer.port.is_not(None)
                    )
                )
            )
        for row in scheduled:
            fleet = fleets.get(row.fleet)
            if fleet is None or (fleet.start_after is not None and fleet.start_after > now):
                continue
            spec = FleetSpec.model_validate(fleet.spec)
            if spec.provider != self.provider.name:
                continue
            port = self.provider.free_port(spec, {p for p in taken if p is not None})
            if port is None:
                log.warning("fleet %s: no free port in %s", row.fleet, spec.port_range)
                continue
            taken.add(port)
            await self._start(row.id, row.fleet, spec, port, after_crash=fleet.crash_streak > 0)

    async def _start(
        self, server_id: uuid.UUID, fleet: str, spec: FleetSpec, port: int, *, after_crash: bool
    ) -> None:
        async with unit_of_work(self.sessions) as session:
            row = await session.get(GameServer, server_id)
            if row is None or row.state != S.SCHEDULED.value:
                return  # cancelled or allocated meanwhile
            key = await issue_key(session, self.clock, row, spec)
            row.state, row.port, row.started_at = S.STARTING.value, port, self.clock.now()
            row.reason = ""
        launch = Launch(server_id, fleet, spec, port, key, self.settings.url_for_servers)
        try:
            started = await self.provider.start(launch)
        except LaunchFailed as exc:
            log.error("fleet %s: cannot start %s: %s", fleet, spec.command[0], exc)
            count_process_start(fleet, started=False, after_crash=after_crash)
            async with unit_of_work(self.sessions) as session:
                failed = await session.get(GameServer, server_id)
                fleet_row = await session.get(Fleet, fleet)
                if failed is not None:
                    end(failed, S.CRASHED, f"could not start: {exc}", self.clock.now())
                    await self._retire(session, [failed])
                if fleet_row is not None:
                    _back_off(fleet_row, self.settings, self.clock.now())
            return
        async with unit_of_work(self.sessions) as session:
            await session.execute(
                update(GameServer)
                .where(GameServer.id == server_id)
                .values(pid=started.pid, process_started=started.process_started)
            )
        count_process_start(fleet, started=True, after_crash=after_crash)
        log.info("started server %s of fleet %s on port %d", server_id, fleet, port)

    async def drain_all(self, reason: str) -> None:
        """Stop every server this agent runs: drain directive and SIGTERM at once, SIGKILL
        after the longest grace period; their rows end, their keys are revoked."""
        now = self.clock.now()
        async with unit_of_work(self.sessions) as session:
            fleets = {row.name: row for row in await session.scalars(select(Fleet))}
            rows = [
                row
                for row in await session.scalars(
                    select(GameServer).where(GameServer.state.in_(_RUNNING))
                )
                if self.provider.running(row.id)
            ]
            for row in rows:
                if row.state not in (S.DRAINING.value, S.UNHEALTHY.value):
                    start_drain(row, S.DRAINING, reason, now)
                row.term_at = now
            await _direct(session, rows)
        grace = max([(_spec(fleets.get(r.fleet)) or _FALLBACK).grace_period for r in rows] or [0])
        for row in rows:
            self.provider.terminate(row.id)
        ids = [row.id for row in rows]
        await self.provider.wait(ids, grace)
        for row in rows:
            if self.provider.running(row.id):
                log.warning("server %s ignored SIGTERM for %.0f s: SIGKILL", row.id, grace)
                self.provider.kill(row.id)
        await self.provider.wait(ids, 5.0)
        async with unit_of_work(self.sessions) as session:
            ended = []
            for row in rows:
                current = await session.get(GameServer, row.id)
                if current is not None and current.state in _RUNNING:
                    end(
                        current,
                        S.STOPPED,
                        reason,
                        self.clock.now(),
                        self.provider.exit_code(row.id),
                    )
                    ended.append(current)
                    count_process_exit(current.fleet, "stopped")
            await self._retire(session, ended)
        if rows:
            log.info("drained %d fleet servers", len(rows))

    async def close(self) -> None:
        await self.provider.close()
        await providers.close()
        with contextlib.suppress(Exception):
            await self.leadership.release()
        await self.engine.dispose()


_FALLBACK = FleetSpec()
"""Timings for servers whose fleet was deleted under them: they are drained with defaults."""


def _spec(fleet: Fleet | None) -> FleetSpec | None:
    return None if fleet is None else FleetSpec.model_validate(fleet.spec)


def _back_off(fleet: Fleet, settings: Settings, now: datetime) -> None:
    fleet.crash_streak += 1
    wait = min(
        settings.fleet_crash_backoff * 2 ** (fleet.crash_streak - 1),
        settings.fleet_crash_backoff_max,
    )
    fleet.start_after = now + timedelta(seconds=wait)


async def _listings(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, Listing]:
    if not ids:
        return {}
    rows = await session.execute(
        select(
            Server.id, Server.state, Server.players, Server.lease_expires_at, Server.directive
        ).where(Server.id.in_(ids))
    )
    return {row[0]: Listing(row[1], row[2], row[3], row[4]) for row in rows.all()}


async def _direct(session: AsyncSession, rows: list[GameServer]) -> None:
    """Put the drain request where the server's next heartbeat answer finds it."""
    for row in rows:
        await session.execute(
            update(Server)
            .where(Server.id == row.id)
            .values(directive={**service.DRAIN, "allocation": row.allocation})
        )


async def _first(*waits: object) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
