"""Sizing an Agones Fleet from Homeport's scaling policy, for fleets whose `agones.scaling` is
`replicas`. Agones only removes Ready GameServers when replicas go down, so an allocated one
is never cut short. There is no per-server idle time to read, so `scale_down_delay` applies to
the Fleet: it shrinks only once it has wanted fewer servers for that long, so a lull between
two waves of matches does not tear down servers the next wave needs. A FleetAutoscaler must
not own the same Fleet."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from homeport.errors import HomeportError
from homeport.fleet import autoscaler
from homeport.fleet.agones import cluster
from homeport.fleet.spec import FleetSpec

log = logging.getLogger("homeport.fleet.agones")
IN_USE = frozenset({"Allocated", "Reserved"})


def in_use(items: list[dict[str, Any]]) -> int:
    """Allocated or reserved GameServers, and Ready ones with players (player tracking)."""
    count = 0
    for item in items:
        status = item.get("status") or {}
        state = status.get("state")
        players = (status.get("players") or {}).get("count") or 0
        if state in IN_USE or (state == "Ready" and players > 0):
            count += 1
    return count


async def sync_replicas(
    spec: FleetSpec, now: datetime, lower_since: dict[str, datetime]
) -> int | None:
    """Patch the Fleet's replicas to what the policy wants, at once upwards and downwards after
    `scale_down_delay` (`lower_since`: since when each Fleet has wanted fewer); the new value,
    or None when it kept its size (or a FleetAutoscaler owns it)."""
    agones = spec.agones
    if agones is None or agones.scaling != "replicas":
        return None
    wanted = autoscaler.target(spec.scaling, in_use(await cluster.list_game_servers(agones)))
    current = ((await cluster.get_fleet(agones)).get("spec") or {}).get("replicas")
    name = f"{agones.namespace}/{agones.fleet}"
    delay = 0.0 if spec.scaling.replicas is not None else spec.scaling.scale_down_delay
    shrinking = isinstance(current, int) and wanted < current
    if shrinking and (now - lower_since.setdefault(name, now)).total_seconds() < delay:
        return None
    lower_since.pop(name, None)  # growing, steady, or shrinking now: a later lull starts anew
    if current == wanted:
        return None
    await cluster.scale_fleet(agones, wanted)
    return wanted


async def size_fleets(
    specs: list[FleetSpec], now: datetime, lower_since: dict[str, datetime]
) -> None:
    """The fleet agent's pass over Agones fleets; a cluster that does not answer costs the
    others nothing."""
    for spec in specs:
        assert spec.agones is not None
        try:
            replicas = await sync_replicas(spec, now, lower_since)
        except HomeportError as exc:
            log.warning("Agones Fleet %s: cannot size it: %s", spec.agones.fleet, exc)
            continue
        if replicas is not None:
            log.info("Agones Fleet %s scaled to %d replicas", spec.agones.fleet, replicas)
