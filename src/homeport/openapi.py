"""Helpers that let routes declare, for the OpenAPI document, which problems they can return."""

from __future__ import annotations

from typing import Any

from homeport.errors import HomeportError, UnprocessableContent

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}


def problems(*errors: type[HomeportError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the problem types it may carry."""
    by_status: dict[int, list[str]] = {}
    declared: tuple[type[HomeportError], ...] = (*errors, UnprocessableContent)
    for error in declared:
        by_status.setdefault(error.status, []).append(error.slug)
    return {
        status: {
            "description": "Problem types: " + ", ".join(sorted(slugs)),
            "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
        }
        for status, slugs in by_status.items()
    }
