"""A connected player, and saving one: what every game server must get right to lose nothing.

Saves of one player never overlap (a lock each), so versions advance one at a time and a save
never races its own predecessor into a conflict. A real conflict means someone else wrote the
player meanwhile (another server, an admin tool, this server's own save whose answer was lost);
it is settled by re-reading and keeping the higher xp, never by overwriting blindly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from homeport.sim.backend import Homeport, Problem, Unavailable
from homeport.sim.protocol import Progress, line

log = logging.getLogger("homeport.sim")
MAX_CONFLICTS = 5
FIRST_RETRY = 0.2
LAST_RETRY = 2.0


@dataclasses.dataclass(eq=False)
class Player:
    id: str
    progress: Progress
    version: int
    """The stored version this server's next save replaces (0: none stored yet)."""
    writer: asyncio.StreamWriter
    dirty: bool = True
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)

    def send(self, *words: object) -> None:
        if not self.writer.is_closing():
            self.writer.write(line(*words))


class Saver:
    def __init__(self, homeport: Homeport, budget: float) -> None:
        self.homeport = homeport
        self.budget = budget
        """Seconds a save may spend retrying when no stop deadline is nearer."""

    async def save(
        self,
        player: Player,
        reason: str,
        *,
        deadline: float | None = None,
        if_changed: bool = False,
    ) -> bool:
        """Write the player's progress; false when it could not be saved in time (logged).
        `deadline` is a loop time; with `if_changed`, an unchanged player costs nothing."""
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + self.budget
        async with player.lock:
            if if_changed and not player.dirty:
                return True
            delay, conflicts, reread = FIRST_RETRY, 0, False
            while True:
                try:
                    if reread:
                        await self._settle_conflict(player)
                        reread = False
                    snapshot = player.progress.copy()
                    player.dirty = False  # an XP gain while this write is out marks it again
                    player.version = await self.homeport.write_progress(
                        player.id, snapshot.as_value(), player.version
                    )
                except Problem as problem:
                    player.dirty = True
                    if problem.slug == "version-conflict" and conflicts < MAX_CONFLICTS:
                        conflicts, reread = conflicts + 1, True
                        continue
                    log.error("save of %s (%s) refused: %s", player.id, reason, problem)
                    return False
                except Unavailable as exc:
                    player.dirty = True
                    if loop.time() + delay > deadline:
                        log.error("save of %s (%s) failed, giving up: %s", player.id, reason, exc)
                        return False
                    log.warning("save of %s (%s) failed, retrying: %s", player.id, reason, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, LAST_RETRY)
                    continue
                log.info(
                    "saved %s (%s): xp=%d level=%d sessions=%d version=%d",
                    player.id,
                    reason,
                    snapshot.xp,
                    snapshot.level,
                    snapshot.sessions,
                    player.version,
                )
                return True

    async def _settle_conflict(self, player: Player) -> None:
        value, version = await self.homeport.read_progress(player.id)
        stored = Progress.from_value(value)
        ours = player.progress
        kept = "the stored xp" if stored.xp > ours.xp else "our xp"
        log.warning(
            "version conflict saving %s: stored v%d xp=%d, ours v%d xp=%d; keeping %s",
            player.id,
            version,
            stored.xp,
            player.version,
            ours.xp,
            kept,
        )
        player.progress = ours.merged(stored)
        player.version = version
