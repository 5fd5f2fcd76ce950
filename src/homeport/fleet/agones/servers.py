"""An Agones Fleet's GameServers, read from the cluster and shown as Homeport fleet servers.

They are not stored: the cluster is their truth, and a copy would only lag behind it. Each is
a `GameServer` row that is never added to a session, so the listing endpoints render both
providers alike. Agones' own state stays visible in `reason`.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from homeport.fleet.agones import cluster
from homeport.fleet.agones.allocation import (
    ANNOTATION_ALLOCATION,
    ANNOTATION_MATCH,
    ANNOTATION_METADATA,
    ANNOTATION_PLAYERS,
    game_port,
    server_id,
)
from homeport.fleet.agones.registry_link import registered_ids
from homeport.fleet.allocation import label_index
from homeport.fleet.models import GameServer
from homeport.fleet.spec import FleetSpec
from homeport.fleet.spec import GameServerState as S

STATES = {
    "PortAllocation": S.SCHEDULED,
    "Creating": S.SCHEDULED,
    "Starting": S.STARTING,
    "Scheduled": S.STARTING,
    "RequestReady": S.STARTING,
    "Ready": S.READY,
    "Reserved": S.ALLOCATED,
    "Allocated": S.ALLOCATED,
    "Shutdown": S.DRAINING,
    "Unhealthy": S.UNHEALTHY,
    "Error": S.UNHEALTHY,
}
"""Agones' GameServer states in Homeport's words. Reserved is held for someone: as good as
allocated for sizing and for allocation."""


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        return None


def _allocation(annotations: dict[str, str]) -> dict[str, Any] | None:
    allocation_id = annotations.get(ANNOTATION_ALLOCATION)
    if allocation_id is None:
        return None
    players = annotations.get(ANNOTATION_PLAYERS, "")
    try:
        metadata = json.loads(annotations.get(ANNOTATION_METADATA, "{}"))
    except ValueError:
        metadata = {}
    return {
        "allocation_id": allocation_id,
        "match_id": annotations.get(ANNOTATION_MATCH),
        "players": [p for p in players.split(",") if p],
        "metadata": metadata,
    }


def to_row(fleet: str, spec: FleetSpec, item: dict[str, Any]) -> GameServer:
    assert spec.agones is not None
    meta = item.get("metadata") or {}
    status = item.get("status") or {}
    agones_state = str(status.get("state") or "Creating")
    state = STATES.get(agones_state, S.STARTING)
    if meta.get("deletionTimestamp") and state not in (S.UNHEALTHY,):
        state = S.DRAINING
    players = (status.get("players") or {}).get("count") or 0
    created = _time(meta.get("creationTimestamp")) or datetime.now(UTC)
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if isinstance(v, str)}
    allocation = _allocation(meta.get("annotations") or {})
    return GameServer(
        id=server_id(meta.get("namespace") or spec.agones.namespace, meta.get("name", "")),
        fleet=fleet,
        state=state.value,
        provider="agones",
        host=status.get("nodeName") or "",
        address=status.get("address") or "",
        port=game_port(status.get("ports") or [], spec.agones.port_name),
        region=spec.region,
        version=spec.version,
        labels=labels,
        label_index=label_index(labels),
        players=int(players),
        allocation=allocation,
        reason=f"agones: {meta.get('name', '')} {agones_state}",
        created_at=created,
        ready_at=None,
        allocated_at=None,
        ended_at=None,
    )


async def list_servers(session: AsyncSession, fleet: str, spec: FleetSpec) -> list[GameServer]:
    """The Fleet's GameServers, oldest first, each with its registry id when it has one."""
    assert spec.agones is not None
    items = await cluster.list_game_servers(spec.agones)
    rows = [to_row(fleet, spec, item) for item in items]
    places = [(row.address, row.port) for row in rows if row.port is not None]
    registered = await registered_ids(session, None, places)
    for row in rows:
        row.id = registered.get((row.address, row.port or 0), row.id)
    return sorted(rows, key=lambda row: (row.created_at, str(row.id)))


async def get_server(
    session: AsyncSession, fleet: str, spec: FleetSpec, wanted: uuid.UUID
) -> GameServer | None:
    return next((r for r in await list_servers(session, fleet, spec) if r.id == wanted), None)
