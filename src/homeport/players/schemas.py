"""Request and response bodies of player documents and inventory."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from homeport.validators import printable

MAX_BATCH = 100
Collection = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_][a-z0-9_.\-]{0,63}$")]
DocumentKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")]
Version = Annotated[int, Field(ge=0, le=2**31 - 1)]
"""0 means "must not exist yet": a create that never overwrites."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PutDocument(Strict):
    value: dict[str, Any]
    """The whole document: a JSON object."""
    version: Version | None = None
    """The version this write replaces (or `If-Match`); 0 to create only."""


class WriteOp(StrEnum):
    PUT = "put"
    PATCH = "patch"
    DELETE = "delete"


class BatchWrite(Strict):
    op: WriteOp = WriteOp.PUT
    collection: Collection
    key: DocumentKey
    value: dict[str, Any] | None = None
    """For `put`: the whole document."""
    patch: dict[str, Any] | None = None
    """For `patch`: an RFC 7396 merge patch."""
    version: Version | None = None


class BatchRequest(Strict):
    writes: Annotated[list[BatchWrite], Field(min_length=1, max_length=MAX_BATCH)]


class DocumentOut(BaseModel):
    player_id: uuid.UUID
    collection: str
    key: str
    value: dict[str, Any]
    version: int
    updated_at: datetime


class WrittenOut(BaseModel):
    collection: str
    key: str
    version: int
    """The new version; 0 after a delete."""


class BatchOut(BaseModel):
    writes: list[WrittenOut]


class DocumentInfo(BaseModel):
    key: str
    version: int
    size: int
    updated_at: datetime


class PlayerDataOut(BaseModel):
    collections: dict[str, list[DocumentInfo]]
    """Every collection the caller may read, and its documents (without their values)."""


class CollectionOut(BaseModel):
    collection: str
    documents: list[DocumentOut]


ItemId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")]
Quantity = Annotated[int, Field(ge=1, le=10**15)]


class ItemCount(Strict):
    item: ItemId
    quantity: Quantity


class InventoryChangeRequest(Strict):
    items: Annotated[list[ItemCount], Field(min_length=1, max_length=50)]
    reason: Annotated[str, StringConstraints(max_length=200), AfterValidator(printable)] = ""


class ItemChangeOut(BaseModel):
    item: str
    delta: int
    balance: int


class InventoryOperationOut(BaseModel):
    operation_id: str
    kind: str
    items: list[ItemChangeOut]
    created_at: datetime


class StackOut(BaseModel):
    item: str
    quantity: int


class InventoryOut(BaseModel):
    items: list[StackOut]


class LedgerEntryOut(BaseModel):
    id: int
    operation_id: str
    kind: str
    item: str
    delta: int
    balance: int
    reason: str
    actor: str
    created_at: datetime


class LedgerPage(BaseModel):
    entries: list[LedgerEntryOut]
    next_cursor: str | None
