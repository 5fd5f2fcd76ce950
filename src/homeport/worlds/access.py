"""Who is calling, as far as worlds care: which worlds they may use, and who holds a lease.

A fleet's worlds belong to the fleet, not to one server's key: when a server crashes, its
replacement (another key, another id) must be able to load the world it left.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport.fleet.models import GameServer
from homeport.identity.service_keys import Caller
from homeport.worlds.errors import NotWorldOwner
from homeport.worlds.models import World

WORLD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
OWNER = re.compile(r"(fleet:[a-z0-9][a-z0-9_\-]{0,47}|key:[0-9a-f\-]{36})?")


@dataclass(frozen=True)
class Writer:
    key_id: uuid.UUID
    server_id: uuid.UUID | None
    is_admin: bool
    fleet: str | None

    @property
    def tags(self) -> frozenset[str]:
        """The owners this caller speaks for."""
        tags = {f"key:{self.key_id}"}
        if self.fleet:
            tags.add(f"fleet:{self.fleet}")
        return frozenset(tags)

    @property
    def default_owner(self) -> str:
        """Whom a world this caller creates belongs to: its fleet, else its key; an admin's
        world is open to every key with scope `worlds` until an owner is set."""
        if self.is_admin:
            return ""
        return f"fleet:{self.fleet}" if self.fleet else f"key:{self.key_id}"

    @property
    def label(self) -> str:
        return f"server:{self.server_id}" if self.server_id else f"key:{self.key_id}"

    def holds(self, world: World) -> bool:
        return world.lease_key_id == self.key_id and world.lease_server_id == self.server_id


class FleetOfServer:
    """Which fleet a bound key's server belongs to, remembered: it never changes."""

    LIMIT = 10_000

    def __init__(self, read_sessions: async_sessionmaker[AsyncSession]) -> None:
        self.read_sessions = read_sessions
        self.known: dict[uuid.UUID, str | None] = {}

    async def writer(self, caller: Caller) -> Writer:
        fleet = None
        if caller.server_id is not None:
            if caller.server_id in self.known:
                fleet = self.known[caller.server_id]
            else:
                async with self.read_sessions() as session:
                    fleet = await session.scalar(
                        select(GameServer.fleet).where(GameServer.id == caller.server_id)
                    )
                if len(self.known) >= self.LIMIT:
                    self.known.clear()
                self.known[caller.server_id] = fleet
        return Writer(caller.key_id, caller.server_id, caller.is_admin, fleet)


def check_owner(world: World, writer: Writer) -> None:
    if writer.is_admin or not world.owner or world.owner in writer.tags:
        return
    raise NotWorldOwner()
