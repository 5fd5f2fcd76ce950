"""Gauges of state, read from the database when scraped: live servers, fleets, tickets.

Counting in the database rather than in process memory makes every replica and worker give
the same figures, and a restart lose nothing. The queries are grouped counts on indexed or
small tables; their answer is kept for a few seconds so that several scrapers (or a scraper
hitting several workers) cost one round of queries per interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport import __version__
from homeport.clock import Clock
from homeport.fleet.models import GameServer
from homeport.matchmaking.models import Ticket
from homeport.registry.models import Server


class StateGauges:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.ttl = ttl
        self.monotonic = monotonic
        self._families: list[Metric] | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def families(self) -> list[Metric]:
        async with self._lock:  # concurrent scrapes wait for one round of queries
            fresh = self.monotonic() - self._read_at < self.ttl
            if self._families is None or not fresh:
                self._families = await self._read()
                self._read_at = self.monotonic()
            return self._families

    async def _read(self) -> list[Metric]:
        info = GaugeMetricFamily(
            "homeport_build_info", "This Homeport's version.", labels=["version"]
        )
        info.add_metric([__version__], 1)
        servers = GaugeMetricFamily(
            "homeport_servers",
            "Registered servers whose lease is current, by the state they report.",
            labels=["state"],
        )
        players = GaugeMetricFamily(
            "homeport_server_players", "Players on registered servers, as their heartbeats say."
        )
        fleet = GaugeMetricFamily(
            "homeport_fleet_servers",
            "Fleet game servers by fleet and state (ended ones while they are kept listed).",
            labels=["fleet", "state"],
        )
        tickets = GaugeMetricFamily(
            "homeport_matchmaking_tickets",
            "Matchmaking tickets by queue and state (ended ones until they are purged).",
            labels=["queue", "state"],
        )
        now = self.clock.now()
        async with self.sessions() as session:
            live = await session.execute(
                select(Server.state, func.count(), func.coalesce(func.sum(Server.players), 0))
                .where(Server.lease_expires_at > now)
                .group_by(Server.state)
            )
            total_players = 0
            for state, count, playing in live:
                servers.add_metric([state], count)
                total_players += int(playing)
            players.add_metric([], total_players)
            by_fleet = await session.execute(
                select(GameServer.fleet, GameServer.state, func.count()).group_by(
                    GameServer.fleet, GameServer.state
                )
            )
            for name, state, count in by_fleet:
                fleet.add_metric([name, state], count)
            by_queue = await session.execute(
                select(Ticket.queue, Ticket.state, func.count()).group_by(
                    Ticket.queue, Ticket.state
                )
            )
            for queue, state, count in by_queue:
                tickets.add_metric([queue, state], count)
        return [info, servers, players, fleet, tickets]
