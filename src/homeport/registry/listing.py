"""The server browser's query: live servers, filtered, sorted, a page at a time.

Pages use keyset cursors (the last row's sort value and id), not offsets: servers register,
expire and change player counts while a player scrolls, and an offset would then skip or
repeat servers that did not change. The ordering always ends in the id, so it is total.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, cast

import orjson
from pydantic import AfterValidator, Field, StringConstraints
from sqlalchemy import ColumnElement, Row, Table, Text, func, select, tuple_
from sqlalchemy import cast as sql_cast

from homeport.clock import Clock
from homeport.db.reads import Reader
from homeport.errors import UnprocessableContent
from homeport.registry.models import Server
from homeport.registry.schemas import (
    MAX_PLAYERS,
    Label,
    ServerState,
    Strict,
    Tag,
)
from homeport.validators import printable

MAX_QUERY_TAGS = 8
_servers = cast(Table, Server.__table__)
COLUMNS = [
    # The metadata as its stored JSON text: pages pass it through untouched (orjson.Fragment)
    # instead of parsing 50 objects only to serialise them again.
    sql_cast(column, Text).label("game_metadata") if column.name == "metadata" else column
    for column in _servers.c
    if column.name not in ("key_id", "private_metadata", "player_ids")
]
"""What a page needs, named like `Server`'s attributes; Core rows, not ORM objects, are built
several times faster."""
COLUMN_NAMES = [column.key for column in COLUMNS]


class SortOrder(StrEnum):
    PLAYERS = "players"
    """Most players first."""
    NAME = "name"
    NEWEST = "newest"


class ServerFilters(Strict):
    map: Label | None = None
    mode: Label | None = None
    region: Label | None = None
    version: Label | None = None
    tag: Annotated[list[Tag], Field(max_length=MAX_QUERY_TAGS)] = []
    """Servers carrying every one of these tags."""
    q: (
        Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(printable)]
        | None
    ) = None
    """Part of the name, any case."""
    state: ServerState | None = None
    not_full: bool = False
    not_empty: bool = False
    has_password: bool | None = None
    sort: SortOrder = SortOrder.PLAYERS
    limit: Annotated[int, Field(ge=1, le=1000)] = 50
    """Page size; at most the `registry_page_size_max` setting."""
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None


def _bad_cursor() -> UnprocessableContent:
    return UnprocessableContent(
        errors=[
            {"loc": ["query", "cursor"], "msg": "Not a cursor for this sort", "type": "value_error"}
        ]
    )


def _sort_value(row: Any, sort: SortOrder) -> Any:
    if sort is SortOrder.PLAYERS:
        return row.players
    if sort is SortOrder.NAME:
        return row.name
    return row.created_at.isoformat()


def encode_cursor(row: Any, sort: SortOrder) -> str:
    raw = orjson.dumps([sort.value, _sort_value(row, sort), row.id.hex])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: SortOrder) -> tuple[Any, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, value, last_id = orjson.loads(raw)
        parsed_id = uuid.UUID(last_id)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise _bad_cursor() from exc
    if kind != sort.value:
        raise _bad_cursor()
    return _checked_value(value, sort), parsed_id


def _checked_value(value: Any, sort: SortOrder) -> Any:
    """The cursor's sort value, if it is one this sort could have produced: cursors come back
    from clients, and a value the database cannot compare must be a 422, not a failed query."""
    if sort is SortOrder.PLAYERS:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_PLAYERS:
            return value
    elif sort is SortOrder.NAME:
        if isinstance(value, str) and 0 < len(value) <= 64 and value.isprintable():
            return value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is not None:
                return moment.astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    raise _bad_cursor()


def _after(sort: SortOrder, value: Any, last_id: uuid.UUID) -> ColumnElement[bool]:
    # Row values, not `a < v OR (a = v AND id < last)`: both databases turn a row-value
    # comparison into one range of the sort index, where the OR form can fall back to a scan.
    if sort is SortOrder.PLAYERS:
        return tuple_(Server.players, Server.id) < tuple_(value, last_id)
    if sort is SortOrder.NAME:
        return tuple_(Server.name, Server.id) > tuple_(value, last_id)
    return tuple_(Server.created_at, Server.id) < tuple_(value, last_id)


def _order(sort: SortOrder) -> list[Any]:
    if sort is SortOrder.PLAYERS:
        return [Server.players.desc(), Server.id.desc()]
    if sort is SortOrder.NAME:
        return [Server.name.asc(), Server.id.asc()]
    return [Server.created_at.desc(), Server.id.desc()]


def _conditions(filters: ServerFilters, now: datetime) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Server.lease_expires_at > now]
    for column, wanted in (
        (Server.map, filters.map),
        (Server.mode, filters.mode),
        (Server.region, filters.region),
        (Server.version, filters.version),
        (Server.state, filters.state.value if filters.state else None),
    ):
        if wanted is not None:
            conditions.append(column == wanted)
    for tag in filters.tag:
        conditions.append(Server.tags.contains(f"|{tag}|", autoescape=True))
    if filters.q is not None:
        conditions.append(func.lower(Server.name).contains(filters.q.lower(), autoescape=True))
    if filters.not_full:
        conditions.append(Server.players < Server.max_players)
    if filters.not_empty:
        conditions.append(Server.players > 0)
    if filters.has_password is not None:
        conditions.append(Server.password_protected.is_(filters.has_password))
    return conditions


async def list_servers(
    reader: Reader, clock: Clock, filters: ServerFilters, *, max_page: int
) -> tuple[list[Row[Any]], str | None]:
    """One page of live servers and the cursor of the next page (None on the last)."""
    limit = min(filters.limit, max_page)
    conditions = _conditions(filters, clock.now())
    if filters.cursor is not None:
        value, last_id = _decode_cursor(filters.cursor, filters.sort)
        conditions.append(_after(filters.sort, value, last_id))
    query = select(*COLUMNS).where(*conditions).order_by(*_order(filters.sort)).limit(limit + 1)
    rows = await reader.rows(query)
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode_cursor(page[-1], filters.sort)
