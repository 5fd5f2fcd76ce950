"""Request and response bodies of the fleet endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from homeport.fleet.models import GameServer
from homeport.fleet.service import FleetView
from homeport.fleet.spec import FleetSpec, LabelKey, LabelValue, ScalingPolicy, Text
from homeport.validators import encoded_json, printable

METADATA_MAX_BYTES = 4096
MAX_PLAYERS = 256


def _small(value: dict[str, Any]) -> dict[str, Any]:
    if len(encoded_json(value)) > METADATA_MAX_BYTES:
        raise ValueError(f"must be at most {METADATA_MAX_BYTES} bytes as JSON")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AllocateRequest(Strict):
    region: Text | None = None
    version: Text | None = None
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=32)] = {}
    """Every label given must be on the server, with this value."""
    match_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(printable)]
        | None
    ) = None
    players: Annotated[list[uuid.UUID], Field(max_length=MAX_PLAYERS)] = []
    """The players expected on the server; it learns them in its allocation."""
    metadata: Annotated[dict[str, Any], AfterValidator(_small)] = {}
    wait: Annotated[float, Field(ge=0, le=600)] | None = None
    """Seconds to wait for a server when none is ready (capped by the server's setting)."""


class AllocateResponse(BaseModel):
    server_id: uuid.UUID
    fleet: str
    address: str
    port: int
    region: str
    version: str
    labels: dict[str, str]
    allocation_id: uuid.UUID
    match_id: str | None
    allocated_at: datetime


class ScaleRequest(Strict):
    replicas: Annotated[int, Field(ge=0, le=10_000)] | None
    """A fixed number of servers, or null to go back to the buffer policy."""


class FleetOut(BaseModel):
    name: str
    source: str
    region: str
    version: str
    labels: dict[str, str]
    scaling: ScalingPolicy
    servers: dict[str, int]
    """Live servers by state."""
    crash_streak: int
    spec: FleetSpec | None
    """The whole definition, for admin keys only (it may hold secrets in `environment`)."""

    @classmethod
    def of(cls, view: FleetView, *, admin: bool) -> FleetOut:
        spec = view.spec
        return cls(
            name=view.name,
            source=view.source,
            region=spec.region,
            version=spec.version,
            labels=spec.labels,
            scaling=spec.scaling,
            servers=view.counts,
            crash_streak=view.crash_streak,
            spec=spec if admin else None,
        )


class FleetList(BaseModel):
    fleets: list[FleetOut]


class GameServerOut(BaseModel):
    id: uuid.UUID
    fleet: str
    state: str
    address: str
    port: int | None
    region: str
    version: str
    labels: dict[str, str]
    players: int
    reason: str
    exit_code: int | None
    pid: int | None
    allocation: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    ready_at: datetime | None
    allocated_at: datetime | None
    drain_at: datetime | None
    ended_at: datetime | None

    @classmethod
    def of(cls, row: GameServer) -> GameServerOut:
        return cls.model_validate(row, from_attributes=True)


class GameServerList(BaseModel):
    servers: list[GameServerOut]
