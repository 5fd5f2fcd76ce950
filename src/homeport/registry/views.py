"""How a server is shown: to anyone in the browser, or to its own key and admins.

The browser's pages are built as plain dicts and serialised once (no model per row): a page of
50 servers is the registry's most frequent read.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

import orjson

from homeport.registry.schemas import OwnedServerOut, ServerOut
from homeport.registry.service import decode_tags
from homeport.timefmt import rfc3339


class ServerFields(Protocol):
    """A `Server` row, or a Core row of the same columns (see `listing.COLUMNS`)."""

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
    tags: str
    game_metadata: dict[str, Any]
    password_protected: bool
    require_join_ticket: bool
    state: str
    created_at: datetime
    heartbeat_at: datetime


def public_dict(row: ServerFields) -> dict[str, Any]:
    """Never the registering key, the private metadata or who is playing."""
    return {
        "id": str(row.id),
        "name": row.name,
        "address": row.address,
        "port": row.port,
        "map": row.map,
        "mode": row.mode,
        "region": row.region,
        "version": row.version,
        "players": row.players,
        "max_players": row.max_players,
        "tags": decode_tags(row.tags),
        "metadata": row.game_metadata,
        "password_protected": row.password_protected,
        "require_join_ticket": row.require_join_ticket,
        "state": row.state,
        "created_at": rfc3339(row.created_at),
        "heartbeat_at": rfc3339(row.heartbeat_at),
    }


def page_dicts(rows: list[Any], names: list[str]) -> list[dict[str, Any]]:
    """`public_dict` for Core rows of the columns `names`, read by position: attribute access
    on a row costs more than building the whole dict. The metadata comes as stored JSON text
    and is embedded as it is."""
    at = {name: index for index, name in enumerate(names)}
    i_id, i_tags, i_meta = at["id"], at["tags"], at["game_metadata"]
    i_created, i_beat = at["created_at"], at["heartbeat_at"]
    plain = [
        (name, at[name])
        for name in (
            "name",
            "address",
            "port",
            "map",
            "mode",
            "region",
            "version",
            "players",
            "max_players",
            "password_protected",
            "require_join_ticket",
            "state",
        )
    ]
    page = []
    for row in rows:
        item = {name: row[index] for name, index in plain}
        item["id"] = str(row[i_id])
        item["tags"] = decode_tags(row[i_tags])
        item["metadata"] = orjson.Fragment(row[i_meta])
        item["created_at"] = rfc3339(row[i_created])
        item["heartbeat_at"] = rfc3339(row[i_beat])
        page.append(item)
    return page


def public_view(row: ServerFields) -> ServerOut:
    return ServerOut.model_validate(public_dict(row))


def owned_view(row: Any) -> OwnedServerOut:
    return OwnedServerOut(
        **public_view(row).model_dump(),
        private_metadata=row.private_metadata,
        player_ids=[uuid.UUID(p) for p in row.player_ids],
        expires_at=row.lease_expires_at,
    )
