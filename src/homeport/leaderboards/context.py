"""What the leaderboards keep for the life of the process: the submission writer, the rank
indexes and a short-lived cache of board rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.identity.caches import TTLCache
from homeport.leaderboards.boards import BoardRule
from homeport.leaderboards.errors import LeaderboardNotFound
from homeport.leaderboards.feed import Change
from homeport.leaderboards.lookups import Lookups
from homeport.leaderboards.models import Leaderboard
from homeport.leaderboards.standings import Standings
from homeport.leaderboards.writer import RecordWriter
from homeport.settings import Settings

BOARD_CACHE_SECONDS = 5.0
"""How long a board deleted by another process may still be read here (its records are gone at
once; only its rules linger). Deletions made through the feed clear the cache sooner."""


@dataclass
class Leaderboards:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    boards: TTLCache[str, BoardRule] = field(init=False)
    standings: Standings = field(init=False)
    writer: RecordWriter = field(init=False)
    lookups: Lookups = field(init=False)

    def __post_init__(self) -> None:
        self.lookups = Lookups(self.settings, self.engine)
        self.boards = TTLCache(self.clock, BOARD_CACHE_SECONDS)
        self.standings = Standings(self.settings, self.clock, self.engine, self._changed)
        self.writer = RecordWriter(self.settings, self.engine, self.clock, self._changed)

    def _changed(self, changes: list[Change]) -> None:
        for change in changes:
            if change.key is None:
                self.boards.pop(change.board_id)
                self.writer.forget_board(change.board_id)
        self.standings.apply(changes)

    async def rule(self, read: async_sessionmaker[AsyncSession], board_id: str) -> BoardRule:
        """The board's rules (LeaderboardNotFound when there is no such board)."""
        rule = self.boards.get(board_id)
        if rule is None:
            async with read() as session:
                row = await session.get(Leaderboard, board_id)
            if row is None:
                raise LeaderboardNotFound()
            rule = BoardRule.of(row)
            self.boards.put(board_id, rule)
        return rule

    def forget(self, board_id: str) -> None:
        self.boards.pop(board_id)
        self.standings.forget_board(board_id)
        self.writer.forget_board(board_id)

    async def close(self) -> None:
        await self.writer.close()
        await self.standings.close()
        await self.lookups.close()
