"""Where a fleet's servers run decides how they are allocated and listed: the fleet's
`provider` picks one of these, so the allocation API, matchmaking and the listings ask the
fleet, never a provider by name.

`local`: servers are rows of this database, started by Homeport's fleet agent (`agent.py`,
with the process `Provider` of `provider.py`). `agones`: servers are GameServers of a
Kubernetes cluster, asked for on every call (`homeport.fleet.agones`); the Kubernetes client
is imported the first time such a fleet is used.
"""

from __future__ import annotations

import sys
import uuid
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.fleet.models import GameServer
from homeport.fleet.spec import FleetSpec

if TYPE_CHECKING:  # allocation imports this module
    from homeport.fleet.allocation import Allocated, Request


class FleetProvider(Protocol):
    async def allocate(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        spec: FleetSpec,
        request: Request,
        *,
        wait: float,
    ) -> Allocated: ...

    async def servers(
        self, session: AsyncSession, fleet: str, spec: FleetSpec, *, include_ended: bool
    ) -> list[GameServer] | None:
        """The fleet's servers; None: they are the fleet's rows in this database."""

    async def server(
        self, session: AsyncSession, fleet: str, spec: FleetSpec, server_id: uuid.UUID
    ) -> GameServer | None:
        """One of them, or None when not found (or, for `local`, to be read from rows)."""


class LocalFleet:
    async def allocate(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        spec: FleetSpec,
        request: Request,
        *,
        wait: float,
    ) -> Allocated:
        from homeport.fleet.allocation import allocate_row

        return await allocate_row(sessions, clock, request, wait=wait)

    async def servers(
        self, session: AsyncSession, fleet: str, spec: FleetSpec, *, include_ended: bool
    ) -> list[GameServer] | None:
        return None

    async def server(
        self, session: AsyncSession, fleet: str, spec: FleetSpec, server_id: uuid.UUID
    ) -> GameServer | None:
        return None


class AgonesFleet:
    async def allocate(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        spec: FleetSpec,
        request: Request,
        *,
        wait: float,
    ) -> Allocated:
        from homeport.fleet.agones import allocation

        return await allocation.allocate(sessions, clock, spec, request, wait=wait)

    async def servers(
        self, session: AsyncSession, fleet: str, spec: FleetSpec, *, include_ended: bool
    ) -> list[GameServer] | None:
        from homeport.fleet.agones import servers

        return await servers.list_servers(session, fleet, spec)  # no ended ones in Kubernetes

    async def server(
        self, session: AsyncSession, fleet: str, spec: FleetSpec, server_id: uuid.UUID
    ) -> GameServer | None:
        from homeport.fleet.agones import servers

        return await servers.get_server(session, fleet, spec, server_id)


PROVIDERS: dict[str, FleetProvider] = {"local": LocalFleet(), "agones": AgonesFleet()}


def for_spec(spec: FleetSpec) -> FleetProvider:
    return PROVIDERS[spec.provider]


async def close() -> None:
    """Close the cluster connections this event loop opened, if any fleet used one."""
    if "homeport.fleet.agones.cluster" in sys.modules:
        from homeport.fleet.agones.cluster import close_clients

        await close_clients()
