"""The demo's live terminal view (rich) and its closing summary.

On a terminal the view redraws in place; elsewhere (CI, a log file) it prints one line every
few seconds instead, so a bounded run leaves a readable record."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.live import Live
from rich.table import Table

from homeport.demo.stats import DemoStats

REFRESH = 1.0
PLAIN_EVERY = 5.0
FLEET_STATES = ("starting", "ready", "allocated", "draining", "unhealthy", "crashed")


COUNTED = {  # sample name in /metrics → what the view calls it
    "homeport_validations_total": "validations",
    "homeport_player_data_saves_total": "saves",
}


class FleetWatch:
    """What Homeport itself reports: the fleet's servers by state (admin API), and its own
    counters of validations and saves (`/metrics`), as rates between two polls."""

    def __init__(self, http: httpx.AsyncClient, fleet: str) -> None:
        self.http, self.fleet = http, fleet
        self.states: Counter[str] = Counter()
        self.players = 0
        self.rates: dict[str, float] = {}
        self._last: tuple[float, Counter[str]] | None = None

    async def poll(self) -> None:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            answer = await self.http.get(f"/v1/fleets/{self.fleet}/servers")
            if answer.status_code == 200:
                servers: list[dict[str, Any]] = answer.json()["servers"]
                self.states = Counter(s["state"] for s in servers)
                self.players = sum(int(s.get("players") or 0) for s in servers)
            scraped = await self.http.get("/metrics")
            if scraped.status_code == 200:
                self._count(scraped.text)

    def _count(self, text: str) -> None:
        now, totals = time.monotonic(), Counter[str]()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in COUNTED and sample.labels.get("result") == "ok":
                    totals[COUNTED[sample.name]] += int(sample.value)
        if self._last is not None and now > self._last[0]:
            elapsed, before = now - self._last[0], self._last[1]
            self.rates = {n: (totals[n] - before[n]) / elapsed for n in COUNTED.values()}
        self._last = (now, totals)

    def rate(self, name: str, fallback: float) -> float:
        """Homeport's own rate once two scrapes are in, else what the players counted."""
        return self.rates.get(name, fallback)


def table(stats: DemoStats, fleet: FleetWatch, url: str) -> Table:
    grid = Table(title=f"Homeport demo — {url}  (Ctrl-C drains and stops)", show_header=False)
    grid.add_column(style="bold")
    grid.add_column()
    servers = "  ".join(f"{s} {fleet.states[s]}" for s in FLEET_STATES if fleet.states[s])
    rows = [
        ("running", f"{stats.elapsed:.0f} s"),
        ("game servers", servers or "starting…"),
        ("players online", f"{stats.online}  (the fleet counts {fleet.players})"),
        ("tickets searching", str(stats.searching)),
        ("matches", str(len(stats.matches))),
        ("validations/s", f"{fleet.rate('validations', stats.rate('joins')):.1f}"),
        ("saves/s", f"{fleet.rate('saves', stats.rate('saves')):.1f}"),
        ("players served", str(len(stats.players_served))),
        ("errors", f"[red]{len(stats.errors)}[/red]" if stats.errors else "0"),
        ("dashboard", f"{url}/admin"),
    ]
    for name, value in rows:
        grid.add_row(name, value)
    return grid


def line(stats: DemoStats, fleet: FleetWatch) -> str:
    servers = " ".join(f"{s}={fleet.states[s]}" for s in FLEET_STATES if fleet.states[s])
    return (
        f"[{stats.elapsed:5.0f} s] servers {servers or '-'} | online {stats.online}"
        f" searching {stats.searching} | matches {len(stats.matches)}"
        f" | validations/s {fleet.rate('validations', stats.rate('joins')):.1f}"
        f" saves/s {fleet.rate('saves', stats.rate('saves')):.1f}"
        f" | errors {len(stats.errors)}"
    )


async def show(
    stats: DemoStats, fleet: FleetWatch, url: str, console: Console, stopping: asyncio.Event
) -> None:
    """Until `stopping`: redraw every second, or a plain line every few seconds."""
    if console.is_terminal:
        with Live(table(stats, fleet, url), console=console, refresh_per_second=4) as live:
            while not stopping.is_set():
                await fleet.poll()
                live.update(table(stats, fleet, url))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), REFRESH)
        return
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), PLAIN_EVERY)
        await fleet.poll()
        console.print(line(stats, fleet), highlight=False, soft_wrap=True)


def summary(stats: DemoStats, exit_code: int | None, console: Console) -> None:
    outcomes = "  ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items())) or "none"
    counts = stats.counts
    console.print(f"\nHomeport demo: {stats.elapsed:.0f} s", highlight=False)
    for name, value in (
        ("players served", len(stats.players_served)),
        ("matches", len(stats.matches)),
        ("validated joins", counts["joins"]),
        ("data saves", counts["saves"]),
        ("level-ups", counts["level_ups"]),
        ("tickets", counts["tickets"]),
        ("server list reads", counts["browses"]),
        ("token refreshes", counts["refreshes"]),
        ("refusals and races (not errors)", outcomes),
        ("homeport serve exit", exit_code),
        ("errors", len(stats.errors)),
    ):
        console.print(f"  {name}: {value}", highlight=False, soft_wrap=True)
    for error in stats.errors[:20]:
        console.print(f"    {error}", highlight=False, markup=False, soft_wrap=True)
