"""What player data keeps for the life of the process: grouped saves and spawn reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from homeport.clock import Clock
from homeport.players.saves import DocumentSaves
from homeport.players.spawns import SpawnReader
from homeport.settings import Settings


@dataclass
class Players:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    saves: DocumentSaves = field(init=False)
    spawns: SpawnReader = field(init=False)

    def __post_init__(self) -> None:
        self.saves = DocumentSaves(self.settings, self.engine, self.clock)
        self.spawns = SpawnReader(self.settings, self.engine)

    async def close(self) -> None:
        await self.saves.close()
        await self.spawns.close()
