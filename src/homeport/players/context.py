"""What player data keeps for the life of the process: the grouped writer of saves."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from homeport.clock import Clock
from homeport.players.saves import DocumentSaves
from homeport.settings import Settings


@dataclass
class Players:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    saves: DocumentSaves = field(init=False)

    def __post_init__(self) -> None:
        self.saves = DocumentSaves(self.settings, self.engine, self.clock)

    async def close(self) -> None:
        await self.saves.close()
