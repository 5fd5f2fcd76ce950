"""Serving a chunk: conditional and range requests over whichever storage holds it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from homeport.worlds.context import Worlds
from homeport.worlds.models import Chunk
from homeport.worlds.ranges import parse_range


def _etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in candidates or etag in candidates


async def _opened(worlds: Worlds, key: str, start: int, end: int) -> AsyncIterator[bytes]:
    """The blocks of [start, end), the first one read before any header is sent: a chunk the
    storage cannot give (unreachable, or its object lost) is a 503 problem, not a 200 that
    stops short."""
    storage = await worlds.started()
    blocks = storage.read(key, start, end)
    first = b""
    async with worlds.storage_errors():
        async for block in blocks:
            first = block
            break

    async def stream() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            async for block in blocks:
                yield block
        finally:
            close = getattr(blocks, "aclose", None)  # a client gone mid-way: release the file
            if close is not None:
                await close()

    return stream()


async def chunk_response(worlds: Worlds, chunk: Chunk, request: Request) -> Response:
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
    if end == start:
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    return StreamingResponse(
        await _opened(worlds, chunk.object_key, start, end),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )
