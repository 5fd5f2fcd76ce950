"""What the registry keeps for the life of the process: lease rhythm, heartbeat writer, caches."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.identity.caches import TTLCache
from homeport.identity.service_keys import Caller
from homeport.registry.errors import JoinTicketRequired, NotServerOwner, ServerNotFound
from homeport.registry.heartbeats import HeartbeatWriter
from homeport.registry.models import Server
from homeport.registry.service import Lease
from homeport.settings import Settings


@dataclass(frozen=True, slots=True)
class ServerTrust:
    """What never changes for a server id (a re-registration gets a new id), so it caches."""

    key_id: uuid.UUID
    require_join_ticket: bool


@dataclass
class Registry:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    lease: Lease = field(init=False)
    heartbeats: HeartbeatWriter = field(init=False)
    trust: TTLCache[uuid.UUID, ServerTrust] = field(init=False)
    ticket_only_keys: TTLCache[uuid.UUID, bool] = field(init=False)
    """Whether a key has live servers that admit players by join ticket only."""

    def __post_init__(self) -> None:
        self.lease = Lease.of(self.settings)
        self.heartbeats = HeartbeatWriter(self.settings, self.engine, self.clock, self.lease)
        self.trust = TTLCache(self.clock, self.settings.auth_cache_max_age)
        self.ticket_only_keys = TTLCache(self.clock, self.settings.auth_cache_max_age)

    async def admit_plain_token(
        self, read: async_sessionmaker[AsyncSession], caller: Caller, server_id: uuid.UUID
    ) -> None:
        """Refuse an access token for a server of another key, or one that demands tickets."""
        trust = self.trust.get(server_id)
        if trust is None:
            async with read() as session:
                row = (
                    await session.execute(
                        select(Server.key_id, Server.require_join_ticket).where(
                            Server.id == server_id,
                            Server.lease_expires_at > self.clock.now(),
                        )
                    )
                ).one_or_none()
            if row is None:
                raise ServerNotFound()
            trust = ServerTrust(row.key_id, row.require_join_ticket)
            self.trust.put(server_id, trust)
        if trust.key_id != caller.key_id:
            raise NotServerOwner()
        if trust.require_join_ticket:
            raise JoinTicketRequired()

    async def admit_unnamed_plain_token(
        self, read: async_sessionmaker[AsyncSession], caller: Caller
    ) -> None:
        """Refuse an access token validated without a `server_id` by a key that runs servers
        demanding join tickets: otherwise such a server could skip its own rule by not saying
        who it is. (Another replica's fresh registration is seen within `auth_cache_max_age`.)"""
        ticket_only = self.ticket_only_keys.get(caller.key_id)
        if ticket_only is None:
            async with read() as session:
                found = await session.scalar(
                    select(Server.id)
                    .where(
                        Server.key_id == caller.key_id,
                        Server.require_join_ticket.is_(True),
                        Server.lease_expires_at > self.clock.now(),
                    )
                    .limit(1)
                )
            ticket_only = found is not None
            self.ticket_only_keys.put(caller.key_id, ticket_only)
        if ticket_only:
            raise JoinTicketRequired(
                "This key runs servers that admit players by join ticket only: pass the"
                " server_id, and a join ticket for ticket-only servers"
            )

    async def close(self) -> None:
        await self.heartbeats.close()
