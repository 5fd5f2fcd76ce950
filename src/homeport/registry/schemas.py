"""Request and response bodies of the registry endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from homeport.validators import encoded_json, printable

MAX_TAGS = 16
MAX_PLAYER_IDS = 1024
METADATA_HARD_LIMIT = 65_536
"""Settings lower the real limit; this bounds what pydantic parses before that check."""


class ServerState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    IN_MATCH = "in_match"
    DRAINING = "draining"


def _flat_json(value: dict[str, Any]) -> dict[str, Any]:
    if len(encoded_json(value)) > METADATA_HARD_LIMIT:
        raise ValueError(f"must be at most {METADATA_HARD_LIMIT} bytes as JSON")
    return value


Label = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(printable)
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(printable),
]
Tag = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,32}$"), AfterValidator(str.lower)
]
"""Tags compare case-blind on every database: they are stored and matched in lower case."""
Address = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9.:\-\[\]]{1,253}$", strip_whitespace=True)
]
Metadata = Annotated[dict[str, Any], AfterValidator(_flat_json)]
MAX_PLAYERS = 100_000
PlayerCount = Annotated[int, Field(ge=0, le=MAX_PLAYERS)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Strict):
    name: Name
    port: Annotated[int, Field(ge=1, le=65535)]
    address: Address | None = None
    """Where players connect; unset means the address this request came from."""
    map: Label = ""
    mode: Label = ""
    region: Label = ""
    version: Label = ""
    players: PlayerCount = 0
    max_players: Annotated[int, Field(ge=1, le=MAX_PLAYERS)]
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = []
    metadata: Metadata = {}
    """Shown to everyone in the server browser."""
    private_metadata: Metadata = {}
    """Shown only to the key that registered the server and to admins."""
    password_protected: bool = False
    require_join_ticket: bool = False
    state: ServerState = ServerState.STARTING

    @model_validator(mode="after")
    def _players_fit(self) -> RegisterRequest:
        if self.players > self.max_players:
            raise ValueError("players must not exceed max_players")
        return self


class HeartbeatRequest(Strict):
    players: PlayerCount | None = None
    map: Label | None = None
    state: ServerState | None = None
    player_ids: Annotated[list[uuid.UUID], Field(max_length=MAX_PLAYER_IDS)] | None = None


class Allocation(BaseModel):
    """Who a fleet server was handed to, and for what."""

    allocation_id: uuid.UUID
    match_id: str | None
    players: list[str]
    metadata: dict[str, Any]
    allocated_at: datetime


class HeartbeatResponse(BaseModel):
    server_id: uuid.UUID
    expires_at: datetime
    heartbeat_interval: int
    action: Literal["drain"] | None = None
    """`drain`: stop accepting players, save everyone's data, deregister and exit."""
    allocation: Allocation | None = None
    """Set once a fleet server is allocated (e.g. to a match); the same on every later beat."""


class ServerOut(BaseModel):
    """A server as the browser shows it to anyone."""

    id: uuid.UUID
    name: str
    address: str
    port: int
    map: str
    mode: str
    region: str
    version: str
    players: int
    max_players: int
    tags: list[str]
    metadata: dict[str, Any]
    password_protected: bool
    require_join_ticket: bool
    state: ServerState
    created_at: datetime
    heartbeat_at: datetime


class OwnedServerOut(ServerOut):
    """A server as its own key (and admins) see it."""

    private_metadata: dict[str, Any]
    player_ids: list[uuid.UUID]
    expires_at: datetime


class RegisteredOut(BaseModel):
    server_id: uuid.UUID
    heartbeat_interval: int
    expires_at: datetime
    server: OwnedServerOut


class ServerPage(BaseModel):
    servers: list[ServerOut]
    next_cursor: str | None
    """Pass as `cursor` for the next page; null on the last one."""


class JoinTicketOut(BaseModel):
    ticket: str
    """Give it to the server (it passes it to `POST /v1/validate` as `player_token`)."""
    server_id: uuid.UUID
    expires_at: datetime
    address: str
    port: int
