"""The demo's simulated players: each does what a real game client does, over and over.

Register once, then: browse the server list, queue for a match, wait for the ticket to be
allocated, join the allocated reference server with the ticket's connect token (the server
validates it with Homeport), gain xp (a level-up makes the server save), leave (the server saves
again) and check that the saved progress is what was earned. Anything unexpected is an error;
the refusals a real game meets (a full or draining server, a ticket that timed out) are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
import uuid
from typing import Any

import httpx

from homeport.demo.stats import DemoStats
from homeport.sim import player as sim
from homeport.sim.protocol import level_for

WAIT = 10  # seconds each ticket long poll may wait
SAVE_SETTLE = 15.0  # seconds a drained server's last saves may take to show
NETWORK_ERRORS = (httpx.HTTPError, OSError, TimeoutError, sim.Disconnected, sim.UnexpectedAnswer)
Target = tuple[str, int, str]  # address, port, connect token


class Failed(Exception):
    """Already counted as an error: this round is over."""


class DemoPlayer:
    def __init__(self, stats: DemoStats, http: httpx.AsyncClient, index: int, queue: str) -> None:
        self.stats, self.http, self.queue = stats, http, queue
        self.email = f"demo-{uuid.uuid4().hex[:12]}@example.com"
        self.password = secrets.token_urlsafe(16)
        self.name = f"Player {index + 1}"
        self.id = self.access = self.refresh = ""
        self.renew_at = 0.0
        self.earned = 0

    async def run(self, stopping: asyncio.Event) -> None:
        """Play rounds until `stopping`; a round in progress ends politely."""
        try:
            await self._round_trip(self.register)
            while not stopping.is_set():
                await self._round_trip(lambda: self.round(stopping))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), random.uniform(0.5, 2.0))
        finally:
            await self.http.aclose()

    async def _round_trip(self, step: Any) -> None:
        try:
            await step()
        except Failed:
            await asyncio.sleep(1.0)
        except NETWORK_ERRORS as exc:
            self.stats.fail(f"{self.name}: {exc!r}")
            await asyncio.sleep(1.0)

    async def round(self, stopping: asyncio.Event) -> None:
        await self.browse()
        target = await self.find_match(stopping)
        if target is not None and await self.play(target, stopping):
            await self.check_saved()

    def expect(self, answer: httpx.Response, what: str, *ok: int) -> Any:
        if answer.status_code not in ok:
            self.stats.fail(f"{self.name} {what}: {answer.status_code} {answer.text[:200]}")
            raise Failed
        return answer.json() if answer.content else None

    async def register(self) -> None:
        body = {"email": self.email, "password": self.password, "display_name": self.name}
        self._tokens(
            self.expect(await self.http.post("/v1/auth/register", json=body), "register", 201)
        )
        self.stats.count("registered")

    async def bearer(self) -> dict[str, str]:
        """The access token, refreshed once two thirds of its life have passed."""
        if time.monotonic() >= self.renew_at:
            answer = await self.http.post("/v1/auth/refresh", json={"refresh_token": self.refresh})
            self._tokens(self.expect(answer, "refresh", 200))
            self.stats.count("refreshes")
        return {"Authorization": f"Bearer {self.access}"}

    def _tokens(self, tokens: dict[str, Any]) -> None:
        self.id, self.access = tokens["player"]["id"], tokens["access_token"]
        self.refresh = tokens["refresh_token"]
        self.renew_at = time.monotonic() + tokens["expires_in"] * 2 / 3

    async def browse(self) -> None:
        answer = await self.http.get("/v1/servers", headers=await self.bearer())
        self.expect(answer, "browse", 200)
        self.stats.count("browses")

    async def find_match(self, stopping: asyncio.Event) -> Target | None:
        """Queue and wait for a server; None when the ticket ended without one."""
        body = {"queue": self.queue}
        answer = await self.http.post(
            "/v1/matchmaking/tickets", json=body, headers=await self.bearer()
        )
        ticket = self.expect(answer, "ticket", 201)
        self.stats.count("tickets")
        self.stats.searching += 1
        try:
            while ticket["state"] in ("searching", "matched"):
                if stopping.is_set():
                    await self.cancel(ticket["id"])
                    return None
                url = f"/v1/matchmaking/tickets/{ticket['id']}"
                params = {"wait": str(WAIT)}
                answer = await self.http.get(url, params=params, headers=await self.bearer())
                ticket = self.expect(answer, "ticket wait", 200)
        finally:
            self.stats.searching -= 1
        if ticket["state"] != "allocated":
            self.stats.outcomes[f"ticket-{ticket['state']}"] += 1
            return None
        self.stats.matches.add(str(ticket["match_id"]))
        server = ticket["server"]
        if server is None or not ticket["connect_token"]:  # the server left or filled up
            self.stats.outcomes["server-gone-before-joining"] += 1
            return None
        return server["address"], int(server["port"]), str(ticket["connect_token"])

    async def cancel(self, ticket_id: str) -> None:
        url = f"/v1/matchmaking/tickets/{ticket_id}"
        answer = await self.http.delete(url, headers=await self.bearer())
        self.expect(answer, "cancel", 200, 204, 409)  # 409: it got a server meanwhile

    async def play(self, target: Target, stopping: asyncio.Event) -> bool:
        """True when the player joined, so the server must have saved what was earned."""
        address, port, token = target
        try:
            game = await sim.connect(address, port, token, timeout=15)
        except sim.Denied as denied:
            if denied.problem_type not in ("server-full", "server-draining"):
                self.stats.fail(f"{self.name} join: denied {denied.problem_type}")
            self.stats.outcomes[denied.problem_type] += 1
            return False
        self.stats.count("joins")
        self.stats.players_served.add(self.id)
        self.stats.online += 1
        try:
            if game.progress.get("xp") != self.earned:
                self.stats.fail(f"{self.name} joined with {game.progress}, earned {self.earned}")
            for _ in range(random.randint(3, 8)):
                if stopping.is_set():
                    break
                before = level_for(self.earned)
                gain = random.choice((60, 150, 300, 700))
                xp, level = await game.gain_xp(gain)
                self.earned += gain
                self.stats.count("xp")
                if (xp, level) != (self.earned, level_for(self.earned)):
                    self.stats.fail(f"{self.name}: xp {xp} level {level}, earned {self.earned}")
                if level > before:
                    self.stats.count("level_ups")
                    self.stats.count("saves")  # the reference server saves on a level-up
                await asyncio.sleep(random.uniform(0.5, 1.5))
            await game.quit()  # "BYE" comes once the server saved the player
            self.stats.count("saves")
        except sim.Disconnected as gone:
            if gone.last_line != "BYE draining":
                raise
            self.stats.outcomes["drained-while-playing"] += 1
            self.stats.count("saves")  # a draining server saves its players, then says BYE
        finally:
            self.stats.online -= 1
            await game.close()
        return True

    async def check_saved(self) -> None:
        """The stored xp is exactly what the player earned."""
        deadline = time.monotonic() + SAVE_SETTLE
        url = "/v1/players/me/data/profile/progress"
        while True:
            answer = await self.http.get(url, headers=await self.bearer())
            found = self.expect(answer, "progress", 200, 404)
            stored = 0 if found is None else found["value"]["xp"]
            if stored == self.earned:
                return
            if time.monotonic() > deadline or stored > self.earned:
                self.stats.fail(f"{self.name}: stored xp {stored}, earned {self.earned}")
                return
            await asyncio.sleep(0.5)
