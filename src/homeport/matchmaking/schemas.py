"""Request and response bodies of the matchmaking endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from homeport.matchmaking.queues import PropertyName, QueueSpec, Region
from homeport.validators import printable

PropertyValue = Annotated[str, StringConstraints(max_length=64), AfterValidator(printable)]
Latency = Annotated[float, Field(ge=0, le=10_000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TicketCreate(Strict):
    queue: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$")]
    properties: Annotated[dict[PropertyName, PropertyValue], Field(max_length=16)] = {}
    """E.g. game mode and build version; the queue's `equal` names those that must match."""
    latencies: Annotated[dict[Region, Latency], Field(max_length=32)] = {}
    """Round-trip milliseconds to each region the client measured."""
    party: Annotated[list[uuid.UUID], Field(max_length=99)] = []
    """The other players of the leader's party: they are matched together, on one team."""


class ServerAddress(BaseModel):
    id: uuid.UUID
    address: str
    port: int


class TicketOut(BaseModel):
    id: uuid.UUID
    queue: str
    state: str
    """searching, matched, allocated, timed_out, cancelled or failed."""
    players: list[str]
    properties: dict[str, str]
    latencies: dict[str, float]
    reason: str | None
    created_at: datetime
    expires_at: datetime
    match_id: uuid.UUID | None
    team: int | None
    server: ServerAddress | None
    """Once allocated: where to connect."""
    connect_token: str | None
    """Once allocated: give it to the server (it validates it like an access token); single-use
    and short-lived, so ask for the ticket again for a new one."""
    connect_token_expires_at: datetime | None = None


class QueueOut(BaseModel):
    name: str
    teams: int
    team_size: int
    searching: int
    """Tickets searching or being placed."""
    spec: QueueSpec | None
    """The whole definition, for admin keys."""


class QueueList(BaseModel):
    queues: list[QueueOut]


class MatchOut(BaseModel):
    id: uuid.UUID
    queue: str
    state: str
    teams: list[list[str]]
    region: str | None
    server: ServerAddress | None
    created_at: datetime
    allocated_at: datetime | None
    completed_at: datetime | None
    result: dict[str, Any] | None


class MatchResult(Strict):
    ranks: Annotated[list[Annotated[int, Field(ge=1, le=64)]], Field(min_length=1, max_length=64)]
    """Each team's place, in team order: 1 for the winner; equal places draw."""
