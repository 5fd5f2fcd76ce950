"""Request and response bodies of the worlds API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from homeport.validators import encoded_json
from homeport.worlds.access import OWNER
from homeport.worlds.service import LeaseView, WorldView
from homeport.worlds.snapshots import SnapshotView

SHA256 = r"^[0-9a-f]{64}$"
CHUNK_ID = r"^[!-~]{1,200}$"
"""Printable ASCII without spaces: "12,-3", "region/4/7", "terrain:0"."""
METADATA_MAX_BYTES = 4096
MAX_CHUNKS = 1_000_000
"""The most any setting lets a snapshot name; `worlds_manifest_max_chunks` is the real limit."""
MAX_SEQ = 2**31 - 1
"""Snapshot numbers are 32-bit integer columns."""

Sha256 = Annotated[str, StringConstraints(pattern=SHA256)]
ChunkId = Annotated[str, StringConstraints(pattern=CHUNK_ID)]


class WorldPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: Annotated[str, StringConstraints(pattern=f"^{OWNER.pattern}$")] | None = None
    """`fleet:<name>`, `key:<key id>` or "" (any key with scope `worlds`); only an admin key
    may name another owner than the caller's own fleet or key."""


class WorldOut(BaseModel):
    name: str
    owner: str
    latest_seq: int | None
    snapshots: int
    chunks: int
    stored_bytes: int
    lease_holder: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, v: WorldView) -> WorldOut:
        return cls(**v.__dict__)


class SnapshotOut(BaseModel):
    world: str
    seq: int
    created_at: datetime
    created_by: str
    chunk_count: int
    total_bytes: int
    metadata: dict[str, Any]

    @classmethod
    def of(cls, v: SnapshotView) -> SnapshotOut:
        return cls(**v.__dict__)


class SnapshotWithManifest(SnapshotOut):
    manifest: dict[str, str]
    """Chunk id → SHA-256 of its bytes (read each at `/chunks/{sha256}`)."""


class WorldDetail(BaseModel):
    world: WorldOut
    latest: SnapshotWithManifest | None
    """The last complete save: what a server loads after a restart or a crash."""


class WorldList(BaseModel):
    worlds: list[WorldOut]
    next_after: str | None


class SnapshotList(BaseModel):
    snapshots: list[SnapshotOut]
    next_before: int | None


class LeaseOut(BaseModel):
    world: str
    holder: str | None
    expires_at: datetime | None
    ttl: int

    @classmethod
    def of(cls, v: LeaseView) -> LeaseOut:
        return cls(**v.__dict__)


class MissingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hashes: Annotated[list[Sha256], Field(max_length=MAX_CHUNKS)]


class MissingResponse(BaseModel):
    missing: list[str]
    """The hashes to upload before committing, in the order asked."""


class ChunkStored(BaseModel):
    world: str
    sha256: str
    created: bool
    """False when the world already had these bytes (nothing was stored again)."""


class CommitRequest(BaseModel):
    """A whole `manifest`, or `changes` and `removed` relative to `base`."""

    model_config = ConfigDict(extra="forbid")

    manifest: Annotated[dict[ChunkId, Sha256], Field(max_length=MAX_CHUNKS)] | None = None
    base: Annotated[int, Field(ge=1, le=MAX_SEQ)] | None = None
    """The snapshot this save builds on; refused with 409 if it is no longer the latest."""
    changes: Annotated[dict[ChunkId, Sha256], Field(max_length=MAX_CHUNKS)] = {}
    removed: Annotated[list[ChunkId], Field(max_length=MAX_CHUNKS)] = []
    metadata: dict[str, Any] = {}
    """Small game data kept with the snapshot (seed, game time, version), at most 4 KiB."""

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(encoded_json(value)) > METADATA_MAX_BYTES:
            raise ValueError(f"at most {METADATA_MAX_BYTES} bytes of JSON")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> CommitRequest:
        if self.manifest is not None and (self.changes or self.removed):
            raise ValueError("send either a whole manifest or changes/removed, not both")
        if self.manifest is None and self.base is None:
            raise ValueError("changes/removed need the base snapshot they apply to")
        return self
