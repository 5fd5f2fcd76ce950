"""World refusals."""

from __future__ import annotations

from homeport.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HomeportError,
    NotFound,
    Unavailable,
    UnprocessableContent,
)


class WorldNotFound(NotFound):
    slug = "world-not-found"
    title = "No world has this name"


class SnapshotNotFound(NotFound):
    slug = "snapshot-not-found"
    title = "This world has no snapshot with this number (never made, or past retention)"


class ChunkNotFound(NotFound):
    slug = "chunk-not-found"
    title = "This world has no chunk with this hash"


class NotWorldOwner(Forbidden):
    slug = "not-world-owner"
    title = "This world belongs to another fleet or key"


class WorldLeased(Conflict):
    slug = "world-leased"
    title = "Another server holds this world's write lease"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.extras.get("retry_after", 5))}


class SnapshotConflict(Conflict):
    slug = "snapshot-conflict"
    title = "The world's latest snapshot is not the base this commit names"


class ChunksMissing(Conflict):
    slug = "chunks-missing"
    title = "The manifest names chunks this world does not have: upload them, then commit again"


class HashMismatch(UnprocessableContent):
    slug = "hash-mismatch"
    title = "The body's hash is not the one the request names; nothing was stored"


class RangeNotSatisfiable(HomeportError):
    status = 416
    slug = "range-not-satisfiable"
    title = "The range starts past the end of the chunk"

    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.extras.get('size', 0)}"}


class StorageUnavailable(Unavailable):
    slug = "storage-unavailable"
    title = "The world storage failed or is out of reach; retry shortly"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "2"}


class UploadAbandoned(BadRequest):
    slug = "upload-abandoned"
    title = "The client went away before the whole chunk arrived; nothing was stored"
