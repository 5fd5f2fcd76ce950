"""The demo's live terminal view (rich) and its closing summary.

On a terminal the view redraws in place; elsewhere (CI, a log file) it prints one line every
few seconds instead, so a bounded run leaves a readable record."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from homeport.demo.stats import DemoStats

REFRESH = 1.0
PLAIN_EVERY = 5.0
FLEET_STATES = ("starting", "ready", "allocated", "draining", "unhealthy", "crashed")


class FleetWatch:
    """The fleet's servers by state, as the admin API reports them."""

    def __init__(self, http: httpx.AsyncClient, fleet: str) -> None:
        self.http, self.fleet = http, fleet
        self.states: Counter[str] = Counter()
        self.players = 0

    async def poll(self) -> None:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            answer = await self.http.get(f"/v1/fleets/{self.fleet}/servers")
            if answer.status_code == 200:
                servers: list[dict[str, Any]] = answer.json()["servers"]
                self.states = Counter(s["state"] for s in servers)
                self.players = sum(int(s.get("players") or 0) for s in servers)


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
        ("validations/s", f"{stats.rate('joins'):.1f}  ({stats.counts['joins']} joins)"),
        ("saves/s", f"{stats.rate('saves'):.1f}  ({stats.counts['saves']} saves)"),
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
        f" | validations/s {stats.rate('joins'):.1f} saves/s {stats.rate('saves'):.1f}"
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
