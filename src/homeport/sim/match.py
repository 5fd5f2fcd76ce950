"""A match the fleet allocated to this server, and knowing when it is over.

A fleet server that got a match should not idle forever after it: once the match had players
and has none left, the server waits `linger` seconds (for a reconnect, or a late player) and
then stops gracefully, so the fleet can start a fresh one in its place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("homeport.sim")


class Match:
    def __init__(self, linger: float, stop: Callable[[str], None]) -> None:
        self.linger = linger
        self._stop = stop
        self.allocation: dict[str, Any] | None = None
        self.expected: list[str] = []
        self._had_players = False
        self._seen: set[str] = set()
        """Everyone who joined, even before the allocation reached this server."""
        self._timer: asyncio.TimerHandle | None = None

    @property
    def allocated(self) -> bool:
        return self.allocation is not None

    def allocate(self, allocation: dict[str, Any], players: int) -> None:
        """Take a heartbeat's allocation; the same one again (every beat repeats it) is a no-op."""
        allocation_id = allocation.get("allocation_id")
        if self.allocation is not None and self.allocation.get("allocation_id") == allocation_id:
            return
        self.allocation = allocation
        self.expected = [str(p) for p in allocation.get("players") or []]
        # The allocation comes with a heartbeat, so the match's players may have come (and
        # even gone) before it: then the match already had its players.
        self._had_players = players > 0 or not self._seen.isdisjoint(self.expected)
        log.info(
            "allocated: allocation %s, match %s, %d players expected: %s",
            allocation_id,
            allocation.get("match_id"),
            len(self.expected),
            " ".join(self.expected) or "-",
        )
        self.left(players)  # a match whose players all left before the allocation arrived

    def joined(self, player_id: str) -> None:
        self._seen.add(player_id)
        if self.allocation is None:
            return
        self._had_players = True
        if player_id not in self.expected:
            log.info("%s joined without being allocated here", player_id)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            log.info("a player joined: the match goes on")

    def left(self, players: int) -> None:
        if self.allocation is None or not self._had_players or players or self._timer:
            return
        log.info("match over: stopping in %gs unless a player joins", self.linger)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.linger, self._stop, "match over")

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
