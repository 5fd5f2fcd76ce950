"""What the leaderboards keep for the life of the process."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from homeport.clock import Clock
from homeport.settings import Settings


@dataclass
class Leaderboards:
    settings: Settings
    clock: Clock
    engine: AsyncEngine

    async def close(self) -> None:
        return None
