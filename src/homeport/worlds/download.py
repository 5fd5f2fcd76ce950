"""Serving a chunk: conditional and range requests over whichever storage holds it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from homeport.worlds.models import Chunk
from homeport.worlds.ranges import parse_range
from homeport.worlds.storage import ChunkStorage


def _etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in candidates or etag in candidates


def chunk_response(storage: ChunkStorage, chunk: Chunk, request: Request) -> Response:
    etag = f'"{chunk.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        # Content-addressed: these bytes never change under this URL.
        "Cache-Control": "private, max-age=31536000, immutable",
    }
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        wanted = None  # the client holds other bytes: send the whole chunk
    span = parse_range(wanted, chunk.size)
    start, end, status = 0, chunk.size, 200
    if span is not None:
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{chunk.size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    return StreamingResponse(
        storage.read(chunk.object_key, start, end),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )
