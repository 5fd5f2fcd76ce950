"""The reference server's side of Agones: the SDK sidecar's REST API on localhost, used when
Agones runs the server (it sets `AGONES_SDK_HTTP_PORT`).

What a game server under Agones owes its sidecar, in order: health pings from the start (a
server that misses them is Unhealthy and killed), `/ready` once it listens and is registered
(only then may Agones allocate it), a watch on its GameServer (an allocation's match arrives
in its annotations, a Shutdown asks it to stop), and `/shutdown` at the end of every graceful
stop, so Agones removes it and its Fleet starts a fresh one. The annotation keys are those
Homeport's Agones allocator writes (`homeport.fleet.agones.allocation`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx

log = logging.getLogger("homeport.sim")
HEALTH_INTERVAL = 2.0
"""Agones' default health check allows 3 misses of 5 s; pinging every 2 s leaves room."""
RECONNECT = 1.0
ANNOTATION_MATCH = "homeport.dev/match-id"
ANNOTATION_ALLOCATION = "homeport.dev/allocation-id"
ANNOTATION_PLAYERS = "homeport.dev/players"
ANNOTATION_METADATA = "homeport.dev/metadata"


def allocation_of(game_server: dict[str, Any]) -> dict[str, Any] | None:
    """The match of an Allocated GameServer, in the shape a heartbeat's `allocation` has."""
    if (game_server.get("status") or {}).get("state") != "Allocated":
        return None
    annotations = (game_server.get("object_meta") or {}).get("annotations") or {}
    allocation_id = annotations.get(ANNOTATION_ALLOCATION)
    if not allocation_id:
        return None  # allocated by someone else than Homeport: no match to take
    try:
        metadata = json.loads(annotations.get(ANNOTATION_METADATA) or "{}")
    except ValueError:
        metadata = {}
    players = annotations.get(ANNOTATION_PLAYERS) or ""
    return {
        "allocation_id": allocation_id,
        "match_id": annotations.get(ANNOTATION_MATCH),
        "players": [p for p in players.split(",") if p],
        "metadata": metadata if isinstance(metadata, dict) else {},
    }


class AgonesSdk:
    def __init__(
        self,
        port: int,
        *,
        on_allocated: Callable[[dict[str, Any]], None],
        on_shutdown: Callable[[str], None],
        health_interval: float = HEALTH_INTERVAL,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=httpx.Timeout(5.0, read=None),  # the watch waits as long as nothing changes
            transport=transport,
            trust_env=False,
        )
        self._on_allocated = on_allocated
        self._on_shutdown = on_shutdown
        self.health_interval = health_interval
        self.shut_down = False
        self.place: tuple[str, int] | None = None
        """Where players reach this server, as its GameServer says (see `learn_place`)."""

    async def _call(self, path: str) -> bool:
        try:
            answer = await self.http.post(path, json={}, timeout=5.0)
        except httpx.HTTPError as exc:
            log.warning("Agones SDK %s failed: %r", path, exc)
            return False
        if answer.status_code != 200:
            log.warning("Agones SDK %s answered %d: %s", path, answer.status_code, answer.text)
            return False
        return True

    async def learn_place(self, attempts: int = 5) -> None:
        """The GameServer's address and port (the node's, and the host port Agones mapped to
        the container's): what the server registers, so players and Homeport's allocator find
        it. Left unset when the sidecar cannot tell; the configured address is used then."""
        for _ in range(attempts):
            try:
                answer = await self.http.get("/gameserver", timeout=5.0)
                status = answer.json().get("status") or {} if answer.status_code == 200 else {}
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                log.warning("Agones SDK /gameserver failed: %r", exc)
                status = {}
            ports = status.get("ports") or []
            named = [p for p in ports if p.get("name") == "default"] or ports
            port = named[0].get("port") if named else None
            address = status.get("address")
            if isinstance(address, str) and address and isinstance(port, int):
                self.place = (address, port)
                log.info("Agones: players reach this server at %s:%d", address, port)
                return
            await asyncio.sleep(RECONNECT)

    def follow(
        self, chores: list[asyncio.Task[Any]], registered: asyncio.Event
    ) -> list[asyncio.Task[Any]]:
        """`/ready` once registered and the GameServer watch join the server's chores; the
        health pings (returned) go on through its graceful stop, until `/shutdown`."""
        chores.append(asyncio.create_task(self.ready(registered)))
        chores.append(asyncio.create_task(self.watch()))
        return [asyncio.create_task(self.keep_healthy())]

    async def keep_healthy(self) -> None:
        """Ping `/health` until cancelled (after the last `/shutdown`)."""
        while True:
            await self._call("/health")
            await asyncio.sleep(self.health_interval)

    async def ready(self, registered: asyncio.Event) -> None:
        """Mark the GameServer Ready once the server is registered; retried until it takes."""
        await registered.wait()
        while True:
            if await self._call("/ready"):
                log.info("Agones: ready")
                return
            await asyncio.sleep(RECONNECT)

    async def watch(self) -> None:
        """Follow the GameServer until cancelled, reconnecting when the stream ends."""
        while True:
            try:
                async with self.http.stream("GET", "/watch/gameserver") as stream:
                    async for text in stream.aiter_lines():
                        self._changed(text)
            except httpx.HTTPError as exc:
                log.warning("Agones SDK watch dropped: %r", exc)
            await asyncio.sleep(RECONNECT)

    def _changed(self, text: str) -> None:
        try:
            game_server = (json.loads(text) or {}).get("result") or {}
        except (ValueError, AttributeError):
            log.warning("Agones SDK watch sent something else than JSON: %.200s", text)
            return
        state = (game_server.get("status") or {}).get("state")
        if state == "Shutdown":
            self._on_shutdown("Agones: the GameServer is shutting down")
            return
        allocation = allocation_of(game_server)
        if allocation is not None:
            self._on_allocated(allocation)

    async def shutdown(self) -> None:
        """Tell Agones this server is done (once, at the end of the graceful stop)."""
        if not self.shut_down:
            self.shut_down = await self._call("/shutdown")

    async def aclose(self) -> None:
        await self.http.aclose()
