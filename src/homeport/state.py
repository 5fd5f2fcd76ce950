"""What one running app holds for its lifetime: settings, clock, database handles, capabilities."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.db.engine import create_engine, create_sessionmaker
from homeport.db.reads import Reader
from homeport.events.bus import EventBus
from homeport.fleet import providers as fleet_providers
from homeport.identity.context import Identity, build_identity
from homeport.leaderboards.context import Leaderboards
from homeport.observability.gauges import StateGauges
from homeport.players.context import Players
from homeport.registry.context import Registry
from homeport.settings import Settings
from homeport.worlds.context import Worlds


@dataclass
class AppState:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    identity: Identity
    registry: Registry
    leaderboards: Leaderboards
    players: Players
    bus: EventBus
    reader: Reader
    worlds: Worlds
    gauges: StateGauges

    @classmethod
    def build(cls, settings: Settings, clock: Clock) -> AppState:
        engine = create_engine(settings)
        sessions = create_sessionmaker(engine)
        read_sessions = create_sessionmaker(engine, read_only=True)
        return cls(
            settings=settings,
            clock=clock,
            engine=engine,
            sessions=sessions,
            read_sessions=read_sessions,
            identity=build_identity(settings, clock),
            registry=Registry(settings, clock, engine),
            leaderboards=Leaderboards(settings, clock, engine),
            players=Players(settings, clock, engine),
            bus=EventBus(settings, clock, read_sessions),
            reader=Reader(settings, read_sessions),
            worlds=Worlds.build(settings, clock, sessions, read_sessions),
            gauges=StateGauges(read_sessions, clock, settings.metrics_state_ttl),
        )

    async def close(self) -> None:
        await self.registry.close()
        await self.leaderboards.close()
        await self.players.close()
        await self.bus.close()
        await self.reader.close()
        await self.worlds.close()
        await fleet_providers.close()
        await self.engine.dispose()
