"""Checks for values that callers store and others read back: names, player documents, server
metadata.

Text shown in other players' lists must not carry control characters. Python's JSON parser
accepts what the databases and other clients refuse (NaN and Infinity, strings holding lone
surrogates) and nesting deep enough to overflow a recursive encoder later; each is refused
here, up front, as bad input."""

from __future__ import annotations

import math
from typing import Any

import orjson

MAX_DEPTH = 32
"""Deeper than any game's save data needs; far below the encoders' recursion limits."""


def printable(value: str) -> str:
    """`value` unchanged, or ValueError when it holds control or unassigned characters."""
    if not value.isprintable():
        raise ValueError("must not contain control characters")
    return value


def encoded_json(value: Any, *, max_depth: int = MAX_DEPTH) -> bytes:
    """`value` as compact JSON, or ValueError saying why it cannot be stored."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise ValueError(f"must not nest deeper than {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("must not contain NaN or Infinity")
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:  # lone surrogates, non-string keys, foreign types
        raise ValueError("must be plain JSON with valid Unicode text") from exc
