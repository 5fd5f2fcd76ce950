"""HTTP range requests on a chunk (RFC 9110 §14): one range per request.

A server resuming an interrupted download, or reading one part of a big chunk, asks for
`bytes=a-b`, `bytes=a-` or `bytes=-n`. Several ranges at once are rare and would need a
multipart answer; the whole chunk is served instead, which the RFC allows.
"""

from __future__ import annotations

import re

from homeport.worlds.errors import RangeNotSatisfiable

SPEC = re.compile(r"([0-9]{0,19})-([0-9]{0,19})")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The [start, end) to serve, or None for the whole chunk (no header, several ranges,
    or a header this does not understand, which the RFC says to ignore)."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = SPEC.fullmatch(spec.strip())
    if match is None:
        return None
    first, last = match.groups()
    if size == 0:
        raise RangeNotSatisfiable(size=size)  # no byte of an empty chunk can be asked for
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
