"""The matcher loop's pass: expire old tickets, propose matches, claim their tickets, allocate a
server for each match and settle it — all of a match's tickets allocated, or none.

Runs in one process at a time (a leader loop), so two passes never propose the same tickets;
claiming is still a compare-and-set, because players cancel at any moment.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.db.session import unit_of_work
from homeport.errors import HomeportError
from homeport.fleet import allocation
from homeport.fleet import service as fleet_service
from homeport.fleet.models import GameServer
from homeport.matchmaking.matcher import Candidate, Proposal, propose
from homeport.matchmaking.models import Match, Queue, Ticket
from homeport.matchmaking.queues import QueueSpec
from homeport.matchmaking.tickets import TicketState, announce, end
from homeport.observability.instruments import observe_match
from homeport.settings import Settings

log = logging.getLogger("homeport.matchmaking")
ALLOCATIONS_AT_ONCE = 32


class _Raced(Exception):
    """A proposed ticket stopped searching (cancelled) before it was claimed."""


@dataclass
class PassReport:
    proposed: int = 0
    allocated: int = 0
    failed: int = 0
    abandoned: int = 0
    timed_out: int = 0
    recovered: int = 0
    searching: dict[str, int] = field(default_factory=dict)


class Matchmaker:
    def __init__(
        self, settings: Settings, clock: Clock, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sessions = sessions
        self._slots = asyncio.Semaphore(ALLOCATIONS_AT_ONCE)

    async def run_pass(self) -> PassReport:
        report = PassReport()
        report.timed_out = await self._expire()
        async with self.sessions() as session:
            queues = [
                (q.name, QueueSpec.model_validate(q.spec))
                for q in await session.scalars(select(Queue))
            ]
        await self._recover(dict(queues), report)
        for name, spec in queues:
            await self._queue_pass(name, spec, report)
        return report

    async def _recover(self, specs: dict[str, QueueSpec], report: PassReport) -> None:
        """Matches still allocating when a pass starts were left by a leader that died between
        claiming their tickets and settling them (a pass waits for its own allocations): finish
        them — with the server already allocated to the match if there is one, else a new one."""
        async with self.sessions() as session:
            orphans = list(await session.scalars(select(Match).where(Match.state == "allocating")))
        for match in orphans:
            spec = specs.get(match.queue)
            if spec is None:
                await self._failed(QueueSpec(fleet=match.fleet), match, "the queue is gone")
                report.failed += 1
                continue
            found = await self._allocated_before(match)
            outcome = (
                await self._settle(match, found)
                if found is not None
                else await self._allocate(spec, match)
            )
            report.recovered += 1
            report.allocated += outcome == "allocated"

    async def _allocated_before(self, match: Match) -> allocation.Allocated | None:
        """The server the fleet already allocated to this match, if the answer was lost."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(GameServer).where(
                    GameServer.fleet == match.fleet,
                    GameServer.allocated_at >= match.created_at,
                )
            )
            for row in rows:
                given = row.allocation or {}
                if given.get("match_id") == str(match.id) and row.port is not None:
                    return allocation.Allocated(
                        server_id=row.id,
                        fleet=row.fleet,
                        address=row.address,
                        port=row.port,
                        region=row.region,
                        version=row.version,
                        labels=row.labels,
                        allocation=given,
                    )
        return None

    async def _expire(self) -> int:
        async with unit_of_work(self.sessions) as session:
            stale = list(
                await session.scalars(
                    select(Ticket).where(
                        Ticket.state == TicketState.SEARCHING.value,
                        Ticket.expires_at <= self.clock.now(),
                    )
                )
            )
            for ticket in stale:
                await end(session, self.clock, ticket, TicketState.TIMED_OUT, "no match in time")
        return len(stale)

    async def _candidates(self, name: str, spec: QueueSpec) -> list[Candidate]:
        now = self.clock.now()
        async with self.sessions() as session:
            rows = await session.execute(
                select(
                    Ticket.id,
                    Ticket.players,
                    Ticket.skill,
                    Ticket.created_at,
                    Ticket.latencies,
                    Ticket.properties,
                ).where(Ticket.queue == name, Ticket.state == TicketState.SEARCHING.value)
            )
            return [
                Candidate(
                    ticket_id=str(ticket_id),
                    players=tuple(players),
                    skill=skill,
                    wait=(now - created).total_seconds(),
                    latencies=latencies or {},
                    key=tuple(str((properties or {}).get(k, "")) for k in spec.equal),
                )
                for ticket_id, players, skill, created, latencies, properties in rows.all()
            ]

    async def _queue_pass(self, name: str, spec: QueueSpec, report: PassReport) -> None:
        candidates = await self._candidates(name, spec)
        report.searching[name] = len(candidates)
        if not candidates:
            return
        # CPU work: off the event loop, so this process keeps answering requests meanwhile.
        proposals = await asyncio.to_thread(propose, spec.rules(), candidates)
        report.proposed += len(proposals)
        players = {c.ticket_id: c.players for c in candidates}
        matches = []
        for proposal in proposals:
            match = await self._claim(name, spec, proposal, players)
            if match is not None:
                matches.append(match)
        outcomes = await asyncio.gather(*(self._allocate(spec, match) for match in matches))
        for outcome in outcomes:
            if outcome == "allocated":
                report.allocated += 1
            elif outcome == "abandoned":
                report.abandoned += 1
            else:
                report.failed += 1

    async def _claim(
        self,
        name: str,
        spec: QueueSpec,
        proposal: Proposal,
        players: dict[str, tuple[str, ...]],
    ) -> Match | None:
        ids = [uuid.UUID(t) for team in proposal.teams for t in team]
        now = self.clock.now()
        match = Match(
            id=uuid.uuid4(),
            queue=name,
            state="allocating",
            teams=[[p for t in team for p in players[t]] for team in proposal.teams],
            tickets=[str(i) for i in ids],
            region=proposal.region,
            fleet=spec.fleet_for(proposal.region),
            reason="",
            created_at=now,
        )
        try:
            async with unit_of_work(self.sessions) as session:
                claimed = await session.execute(
                    update(Ticket)
                    .where(Ticket.id.in_(ids), Ticket.state == TicketState.SEARCHING.value)
                    .values(state=TicketState.MATCHED.value, match_id=match.id, updated_at=now)
                )
                if claimed.rowcount != len(ids):  # type: ignore[attr-defined]
                    raise _Raced()
                session.add(match)
                for ticket in await session.scalars(select(Ticket).where(Ticket.id.in_(ids))):
                    await announce(session, self.clock, ticket)
        except _Raced:
            return None
        return match

    async def _allocate(self, spec: QueueSpec, match: Match) -> str:
        request = allocation.Request(
            fleet=match.fleet,
            selector=allocation.Selector(),
            match_id=str(match.id),
            players=tuple(p for team in match.teams for p in team),
            metadata={"queue": match.queue, "teams": match.teams, "region": match.region},
        )
        async with self._slots:
            try:
                found = await allocation.allocate(
                    self.sessions, self.clock, request, wait=spec.allocation_wait
                )
            except HomeportError as exc:
                log.warning("match %s: no server from fleet %s: %s", match.id, match.fleet, exc)
                await self._failed(spec, match, exc.detail)
                return "failed"
        return await self._settle(match, found)

    async def _locked_tickets(self, session: AsyncSession, match: Match) -> list[Ticket]:
        ids = [uuid.UUID(t) for t in match.tickets]
        query = select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id)
        return list(await session.scalars(query.with_for_update()))

    async def _settle(self, match: Match, found: allocation.Allocated) -> str:
        now = self.clock.now()
        async with unit_of_work(self.sessions) as session:
            row = await session.get(Match, match.id, with_for_update=True)
            assert row is not None
            if row.state != "allocating":  # settled meanwhile by another pass: not twice
                await self._release(session, found.server_id, match)
                return "abandoned"
            tickets = await self._locked_tickets(session, match)
            whole = all(
                t.state == TicketState.MATCHED.value and t.match_id == match.id for t in tickets
            )
            if whole:
                row.state, row.allocated_at = "allocated", now
                row.server_id, row.address, row.port = found.server_id, found.address, found.port
                for ticket in tickets:
                    await end(session, self.clock, ticket, TicketState.ALLOCATED, "")
                    observe_match(ticket.queue, ticket.created_at, now)
                return "allocated"
            # A player cancelled meanwhile: no half matches. The others search again, and the
            # server is let go.
            row.state, row.reason = "abandoned", "a ticket was cancelled during allocation"
            for ticket in tickets:
                if ticket.state == TicketState.MATCHED.value and ticket.match_id == match.id:
                    ticket.state, ticket.match_id, ticket.updated_at = "searching", None, now
                    await announce(session, self.clock, ticket)
            await self._release(session, found.server_id, match)
        return "abandoned"

    async def _release(self, session: AsyncSession, server_id: uuid.UUID, match: Match) -> None:
        await fleet_service.release(
            session, self.clock, server_id, reason=f"match {match.id} abandoned"
        )

    async def _failed(self, spec: QueueSpec, match: Match, reason: str) -> None:
        now = self.clock.now()
        async with unit_of_work(self.sessions) as session:
            row = await session.get(Match, match.id, with_for_update=True)
            assert row is not None
            if row.state != "allocating":  # settled meanwhile by another pass
                return
            row.state, row.reason = "failed", f"allocation failed: {reason}"[:200]
            for ticket in await self._locked_tickets(session, match):
                if ticket.state != TicketState.MATCHED.value or ticket.match_id != match.id:
                    continue
                ticket.attempts += 1
                ticket.match_id = None
                if ticket.attempts >= spec.allocation_attempts:
                    await end(session, self.clock, ticket, TicketState.FAILED, row.reason)
                else:
                    ticket.state, ticket.updated_at = TicketState.SEARCHING.value, now
                    await announce(session, self.clock, ticket)
