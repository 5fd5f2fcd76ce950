"""HTTP range requests on a chunk (RFC 9110 §14): one range per request.

A server resuming an interrupted download, or reading one part of a big chunk, asks for
`bytes=a-b`, `bytes=a-` or `bytes=-n`. Several ranges at once are rare and would need a
multipart answer; the whole chunk is served instead, which the RFC allows.
"""

from __future__ import annotations

from homeport.worlds.errors import RangeNotSatisfiable


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The [start, end) to serve, or None for the whole chunk (no header, several ranges,
    or a header this does not understand, which the RFC says to ignore)."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable(size=size)
        return max(0, size - suffix), size
    start = int(first)
    if start >= size:
        raise RangeNotSatisfiable(size=size)
    end = size if last == "" else min(int(last) + 1, size)
    if end <= start:
        return None  # last < first: syntactically invalid, so ignored
    return start, end
