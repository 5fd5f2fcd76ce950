"""Allocating a GameServer of an Agones Fleet: one `GameServerAllocation`, which Agones carries
out atomically (two allocations never get the same GameServer), answered with the same result
a local fleet gives, so the allocation API and matchmaking do not know the difference.

The match reaches the game server through the GameServer's annotations, which the allocation
sets in the same step (`spec.metadata.annotations`): the Homeport addon reads them from the
SDK's GameServer watch. Those keys are a contract with the addon; see docs/fleet.md.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.db.session import unit_of_work
from homeport.fleet.agones import cluster
from homeport.fleet.agones.registry_link import hand_over
from homeport.fleet.agones.spec import FLEET_LABEL, AgonesSpec
from homeport.fleet.allocation import Allocated, Request
from homeport.fleet.errors import NoServerAvailable
from homeport.fleet.spec import FleetSpec
from homeport.timefmt import rfc3339

ANNOTATION_MATCH = "homeport.dev/match-id"
ANNOTATION_ALLOCATION = "homeport.dev/allocation-id"
ANNOTATION_PLAYERS = "homeport.dev/players"
"""The expected players' ids, comma-separated."""
ANNOTATION_METADATA = "homeport.dev/metadata"
"""The allocation's `metadata`, as JSON."""
SERVER_IDS = uuid.UUID("5f0c7a3e-4b1d-5c2a-9e8f-6d4b3a2c1e0f")
POLL_SECONDS = 0.5
"""Between two allocation attempts while waiting for a Ready GameServer."""
CONTENTION_RETRIES = 5
"""Agones answers Contention when its allocation cache lost a race: try again at once."""


def server_id(namespace: str, name: str) -> uuid.UUID:
    """A GameServer's Homeport id: stable, and the same in allocations and listings (the
    allocation's answer names the GameServer but does not carry its uid)."""
    return uuid.uuid5(SERVER_IDS, f"{namespace}/{name}")


def allocation_body(agones: AgonesSpec, request: Request, allocation_id: str) -> dict[str, Any]:
    """The `GameServerAllocation` for this request: Ready GameServers of the Fleet with every
    configured and requested label; the match written onto the one allocated."""
    labels = {**agones.match_labels, **(request.selector.labels or {}), FLEET_LABEL: agones.fleet}
    annotations = {ANNOTATION_ALLOCATION: allocation_id}
    if request.match_id is not None:
        annotations[ANNOTATION_MATCH] = request.match_id
    if request.players:
        annotations[ANNOTATION_PLAYERS] = ",".join(request.players)
    if request.metadata:
        annotations[ANNOTATION_METADATA] = json.dumps(request.metadata, separators=(",", ":"))
    return {
        "apiVersion": "allocation.agones.dev/v1",
        "kind": "GameServerAllocation",
        "metadata": {"namespace": agones.namespace},
        "spec": {
            "selectors": [{"matchLabels": labels, "gameServerState": "Ready"}],
            "scheduling": agones.scheduling,
            "metadata": {"annotations": annotations},
        },
    }


def game_port(ports: list[dict[str, Any]], name: str) -> int | None:
    named = [p for p in ports if p.get("name") == name] or ports
    port = named[0].get("port") if named else None
    return port if isinstance(port, int) else None


def _selected(spec: FleetSpec, request: Request) -> bool:
    """Region and version are the Homeport fleet's own: they match all of its servers or none."""
    selector = request.selector
    return (selector.region is None or selector.region == spec.region) and (
        selector.version is None or selector.version == spec.version
    )


async def allocate(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    spec: FleetSpec,
    request: Request,
    *,
    wait: float,
) -> Allocated:
    """Allocate a Ready GameServer; while none is, try again until `wait` seconds have passed
    (a FleetAutoscaler or the fleet agent adds servers meanwhile), then NoServerAvailable."""
    agones = spec.agones
    assert agones is not None  # FleetSpec validates it
    if not _selected(spec, request):
        raise NoServerAvailable()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    contention = 0
    while True:
        allocation_id = str(uuid.uuid4())
        body = allocation_body(agones, request, allocation_id)
        answer = await cluster.create_allocation(agones, body)
        status = answer.get("status") or {}
        state = status.get("state")
        if state == "Allocated":
            port = game_port(status.get("ports") or [], agones.port_name)
            if port is not None and status.get("address") and status.get("gameServerName"):
                found = _allocated(spec, clock, request, allocation_id, status, port)
                async with unit_of_work(sessions) as session:
                    place = (found.address, found.port)
                    registered = await hand_over(session, clock, place, found.allocation)
                return found if registered is None else replace(found, server_id=registered)
            state = "UnAllocated"  # an answer without an address is useless to players
        if state == "Contention" and contention < CONTENTION_RETRIES:
            contention += 1
            continue
        if loop.time() >= deadline:
            raise NoServerAvailable()
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - loop.time())))


def _allocated(
    spec: FleetSpec,
    clock: Clock,
    request: Request,
    allocation_id: str,
    status: dict[str, Any],
    port: int,
) -> Allocated:
    assert spec.agones is not None
    granted = {
        "allocation_id": allocation_id,
        "match_id": request.match_id,
        "players": list(request.players),
        "metadata": request.metadata or {},
        "allocated_at": rfc3339(clock.now()),
        "game_server": status["gameServerName"],
        "node": status.get("nodeName", ""),
    }
    return Allocated(
        server_id(spec.agones.namespace, status["gameServerName"]),
        request.fleet,
        status["address"],
        port,
        spec.region,
        spec.version,
        dict(spec.labels),
        granted,
    )
