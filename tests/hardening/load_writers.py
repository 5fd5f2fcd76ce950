"""Concurrent writers for the tests that break a live server under load (kill -9, SIGTERM, a
PostgreSQL restart): they remember every write that was acknowledged and every grant that was
sent, which is what the check after the restart needs. How long each writer goes on, and what
counts as a failure, is the test's own."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx

WRITERS = 50
"""Clients writing at once, each on a connection of its own."""

Writer = Callable[[int, httpx.AsyncClient], Awaitable[None]]


class Load:
    """Writer `n` saves a document of its own, grants gold, heartbeats a server or saves a game
    world of its own (a chunk, then the snapshot naming it), by `n % 4`, so every kind of write
    is in flight whenever the server is broken."""

    def __init__(self, key: str, players: list[str], servers: list[str]) -> None:
        self.auth = {"Authorization": f"Bearer {key}"}
        self.players = players
        self.servers = servers
        self.docs: dict[str, tuple[int, int]] = {}  # "player/wN" -> (version, xp) last acknowledged
        self.grants: list[tuple[str, str]] = []  # (player, idempotency key) of every grant sent
        self.beats = 0
        self.worlds: dict[str, tuple[int, str]] = {}  # world -> (seq, chunk hash) acknowledged
        self.statuses: Counter[int] = Counter()
        # Every writer's document was saved once by the test's setup.
        self._versions = [1] * WRITERS

    async def run(self, url: str, timeout: float, writer: Writer) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
            await asyncio.gather(*(writer(n, client) for n in range(WRITERS)))

    async def write(self, client: httpx.AsyncClient, n: int, step: int) -> httpx.Response:
        """Writer `n`'s write number `step`; the step names the grant, so none is sent twice."""
        player = self.players[n % len(self.players)]
        if n % 4 == 0:
            xp = n * 100_000 + step
            r = await client.put(
                f"/v1/players/{player}/data/profile/w{n}",
                json={"value": {"xp": xp}, "version": self._versions[n]},
                headers=self.auth,
            )
            if r.status_code == 200:
                self._versions[n] = r.json()["version"]
                self.docs[f"{player}/w{n}"] = (self._versions[n], xp)
            elif r.status_code == 409:  # a save committed unanswered: catch up
                self._versions[n] = r.json().get("current_version", self._versions[n])
        elif n % 4 == 1:
            idem = f"grant-{n}-{step}"
            self.grants.append((player, idem))
            r = await client.post(
                f"/v1/players/{player}/inventory/grant",
                json={"items": [{"item": "gold", "quantity": 1}]},
                headers={**self.auth, "Idempotency-Key": idem},
            )
        elif n % 4 == 2:
            r = await client.put(
                f"/v1/servers/{self.servers[n % len(self.servers)]}/heartbeat",
                json={"players": step % 8},
                headers=self.auth,
            )
            self.beats += r.status_code == 200
        else:
            r = await self._save_world(client, f"durable-world-{n}", f"{n}/{step} ".encode())
        self.statuses[r.status_code] += 1
        return r

    async def _save_world(
        self, client: httpx.AsyncClient, world: str, seed: bytes
    ) -> httpx.Response:
        """Upload one chunk, then commit a snapshot of it: the answer that failed, or the
        commit's."""
        data = seed * 2048
        sha = hashlib.sha256(data).hexdigest()
        r = await client.put(
            f"/v1/worlds/{world}/chunks/{sha}",
            content=data,
            headers={**self.auth, "Content-Type": "application/octet-stream"},
        )
        if r.status_code not in (200, 201):
            return r
        r = await client.post(
            f"/v1/worlds/{world}/snapshots", json={"manifest": {"terrain": sha}}, headers=self.auth
        )
        if r.status_code == 201:
            self.worlds[world] = (r.json()["seq"], sha)
        return r
