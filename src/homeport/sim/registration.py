"""The sim server's entry in the registry: made, kept alive, listened to, and removed.

The registry forgets a server that misses its heartbeats (a network blip, a long pause), and
says so with `server-not-registered`: the server then simply registers again. Anything else
that goes wrong is logged and tried again on the next beat; a game never stops for its
backend. Each heartbeat answer may carry the fleet's word: a drain, or a match allocated here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from homeport.sim.backend import Homeport, Problem, Unavailable

log = logging.getLogger("homeport.sim")
REGISTER_RETRY = 1.0


class Registration:
    def __init__(
        self,
        homeport: Homeport,
        entry: Callable[[], dict[str, Any]],
        beat: Callable[[], dict[str, Any]],
        *,
        on_drain: Callable[[str], None],
        on_allocation: Callable[[dict[str, Any]], None],
        on_refused: Callable[[str], None],
        fleet_server_id: str | None = None,
    ) -> None:
        """`entry` is the registration body as of now, `beat` a heartbeat's."""
        self.homeport = homeport
        self._entry = entry
        self._beat = beat
        self._on_drain = on_drain
        self._on_allocation = on_allocation
        self._on_refused = on_refused
        self.server_id: str | None = None
        self.heartbeat_interval = 30.0
        self.registered = asyncio.Event()
        """Set once the registry has listed this server (for Agones' `/ready`)."""
        self.fleet_server_id = fleet_server_id
        """The id the fleet gave this server; the registry's answer is the one to use (for a
        key bound to a fleet server, it is the same)."""

    async def keep(self) -> None:
        """Register, then heartbeat every interval the registry names, until cancelled."""
        while True:
            delay = self.heartbeat_interval
            try:
                if self.server_id is None:
                    delay = self.heartbeat_interval if await self._register() else REGISTER_RETRY
                else:
                    delay = await self._heartbeat()
            except Exception:  # a garbled answer must not end the heartbeats for good
                log.exception("heartbeat failed")
            await asyncio.sleep(delay)

    async def remove(self) -> None:
        """Leave the list at once (the graceful way); retried until the caller's timeout."""
        if self.server_id is None:
            return
        delay = 0.1
        while True:
            try:
                await self.homeport.deregister(self.server_id)
                log.info("deregistered %s", self.server_id)
                return
            except Problem as problem:
                log.warning("deregistration refused, the lease will run out: %s", problem)
                return
            except Unavailable as exc:
                log.warning("deregistration failed, retrying: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _register(self) -> bool:
        try:
            answer = await self.homeport.register(self._entry())
        except Unavailable as exc:
            log.warning("registration failed, retrying: %s", exc)
            return False
        except Problem as problem:
            if problem.slug == "registration-raced":
                return False
            detail = problem.body.get("detail", "")
            self._on_refused(f"registration refused: {problem} {detail}".strip())
            return False
        server_id = answer.get("server_id") or answer.get("id")
        if not server_id:
            log.warning("registration answered without an id, retrying: %s", answer)
            return False
        self.server_id = str(server_id)
        self.registered.set()
        self._take_interval(answer)
        log.info("registered as %s, heartbeat every %gs", self.server_id, self.heartbeat_interval)
        if self.fleet_server_id and self.fleet_server_id != self.server_id:
            log.warning(
                "the fleet calls this server %s, the registry %s",
                self.fleet_server_id,
                self.server_id,
            )
        return True

    async def _heartbeat(self) -> float:
        """One heartbeat; the seconds until the next."""
        assert self.server_id is not None
        try:
            answer = await self.homeport.heartbeat(self.server_id, self._beat())
        except Unavailable as exc:
            log.warning("heartbeat failed: %s", exc)
            return self.heartbeat_interval
        except Problem as problem:
            if problem.slug != "server-not-registered":
                log.error("heartbeat refused: %s", problem)
                return self.heartbeat_interval
            log.warning("the registry forgot %s: registering again", self.server_id)
            self.server_id = None
            return 0
        self._take_interval(answer)
        if answer.get("action") == "drain":
            self._on_drain("the fleet asks to drain")
        allocation = answer.get("allocation")
        if isinstance(allocation, dict):
            self._on_allocation(allocation)
        return self.heartbeat_interval

    def _take_interval(self, answer: dict[str, Any]) -> None:
        interval = answer.get("heartbeat_interval")
        if isinstance(interval, int | float) and interval > 0:
            self.heartbeat_interval = float(interval)
