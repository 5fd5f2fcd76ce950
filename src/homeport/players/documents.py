"""Player documents: read, write whole, merge-patch, delete, several at once, all versioned.

Every write of a player runs with that player's account row locked (PostgreSQL) or under
SQLite's one write lock, so version checks and the storage quota see no concurrent write of
the same player; different players never wait for each other. A batch is one transaction:
one refused item and nothing of it is written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.errors import HomeportError, UnprocessableContent
from homeport.identity.models import Account
from homeport.players.access import rule_for
from homeport.players.errors import (
    DocumentNotFound,
    DocumentTooLarge,
    PlayerNotFound,
    VersionConflict,
    VersionRequired,
)
from homeport.players.models import PlayerDocument
from homeport.players.quota import Quota, Usage, charged
from homeport.players.schemas import WriteOp
from homeport.settings import Settings
from homeport.validators import encoded_json


@dataclass(frozen=True, slots=True)
class Write:
    op: WriteOp
    collection: str
    key: str
    value: dict[str, Any] | None = None
    patch: dict[str, Any] | None = None
    version: int | None = None
    """The version the writer last read (0: the document must not exist); None: unversioned."""


@dataclass(frozen=True, slots=True)
class Written:
    collection: str
    key: str
    version: int
    """0 after a delete."""
    updated_at: datetime
    value: dict[str, Any] | None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, `null` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, change in patch.items():
        if change is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), change)
    return result


def _invalid(field: str, message: str) -> UnprocessableContent:
    return UnprocessableContent(
        errors=[{"loc": ["body", field], "msg": message, "type": "value_error"}]
    )


async def lock_player(session: AsyncSession, settings: Settings, player_id: uuid.UUID) -> None:
    """Take the player's write turn, or PlayerNotFound. SQLite's write transactions already
    run one at a time."""
    query = select(Account.id).where(Account.id == player_id)
    if not settings.is_sqlite:
        # NO KEY UPDATE: serialises the player's data writers without blocking the inserts
        # that merely reference the account (a login's session, a leaderboard record).
        query = query.with_for_update(key_share=True)
    if await session.scalar(query) is None:
        raise PlayerNotFound()


async def require_player(session: AsyncSession, player_id: uuid.UUID) -> None:
    if await session.scalar(select(Account.id).where(Account.id == player_id)) is None:
        raise PlayerNotFound()


def _check_version(settings: Settings, write: Write, existing: PlayerDocument | None) -> None:
    if write.version is None:
        if not rule_for(settings, write.collection).unversioned_writes:
            raise VersionRequired(
                f"Send the version this write replaces (If-Match or `version`; 0 to create):"
                f" the '{write.collection}' collection takes no unversioned writes"
            )
        return
    current = existing.version if existing is not None else 0
    if write.version != current:
        raise VersionConflict(current_version=current)


def _new_value(write: Write, existing: PlayerDocument | None) -> dict[str, Any]:
    if write.op is WriteOp.PUT:
        if write.value is None:
            raise _invalid("value", "A put needs the whole document as `value`")
        return write.value
    if write.patch is None:
        raise _invalid("patch", "A patch needs a merge patch object")
    merged = merge_patch(existing.value if existing is not None else {}, write.patch)
    assert isinstance(merged, dict)  # a patch object always merges into an object
    return merged


def encoded_size(settings: Settings, value: dict[str, Any]) -> tuple[str, int]:
    """The document as stored (compact JSON) and its size in bytes, or why it cannot be."""
    try:
        encoded = encoded_json(value)
    except ValueError as exc:
        raise _invalid("value", f"The document {exc}") from exc
    size = len(encoded)
    limit = settings.players_document_max_bytes
    if size > limit:
        raise DocumentTooLarge(
            f"The document is {size} bytes as JSON; the limit is {limit}", max_bytes=limit
        )
    return encoded.decode(), size


async def write_documents(
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    player_id: uuid.UUID,
    writes: list[Write],
) -> list[Written]:
    """Apply `writes` in order, all or none; the version each left behind (0: deleted)."""
    await lock_player(session, settings, player_id)
    now = clock.now()
    names = {(w.collection, w.key) for w in writes}
    rows = await session.scalars(
        select(PlayerDocument).where(
            PlayerDocument.account_id == player_id,
            tuple_(PlayerDocument.collection, PlayerDocument.key).in_(names),
        )
    )
    documents: dict[tuple[str, str], PlayerDocument | None] = {
        (row.collection, row.key): row for row in rows
    }
    quota = Quota(settings)
    before = await usage_of(session, quota, player_id)
    written: list[Written] = []
    for index, write in enumerate(writes):
        try:
            written.append(await _apply(session, settings, player_id, now, write, documents))
        except HomeportError as exc:
            if len(writes) > 1:
                exc.extras["index"] = index
            raise
    await session.flush()
    refusal = quota.refusal(before, await usage_of(session, quota, player_id))
    if refusal is not None:
        raise refusal
    return written


async def usage_of(session: AsyncSession, quota: Quota, player_id: uuid.UUID) -> Usage:
    rows = await session.execute(
        select(
            PlayerDocument.account_id,
            PlayerDocument.collection,
            func.sum(PlayerDocument.size),
            func.count(),
        )
        .where(PlayerDocument.account_id == player_id, PlayerDocument.deleted_at.is_(None))
        .group_by(PlayerDocument.account_id, PlayerDocument.collection)
    )
    return quota.of_rows(rows).get(player_id, Usage())


async def _apply(
    session: AsyncSession,
    settings: Settings,
    player_id: uuid.UUID,
    now: datetime,
    write: Write,
    documents: dict[tuple[str, str], PlayerDocument | None],
) -> Written:
    name = (write.collection, write.key)
    row = documents.get(name)
    live = row if row is not None and row.deleted_at is None else None
    if write.op is WriteOp.DELETE:
        if live is None:
            raise DocumentNotFound()
        _check_version(settings, write, live)
        # A tombstone, not a DELETE: the version goes on, so a writer holding one of the
        # deleted document's versions can never match the document created next.
        live.value = {}
        live.version += 1
        live.size = 0
        live.updated_at = live.deleted_at = now
        return Written(write.collection, write.key, 0, now, None)
    # A malformed document is refused as such, whatever version it names.
    value = _new_value(write, live)
    _, json_size = encoded_size(settings, value)
    size = charged(json_size, write.collection, write.key)
    _check_version(settings, write, live)
    if row is None:
        row = PlayerDocument(
            account_id=player_id,
            collection=write.collection,
            key=write.key,
            value=value,
            version=1,
            size=size,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        documents[name] = row
    else:
        if live is None:  # created again over its tombstone
            row.created_at, row.deleted_at = now, None
        row.value = value
        row.version += 1
        row.size = size
        row.updated_at = now
    return Written(write.collection, write.key, row.version, now, value)


async def get_document(
    session: AsyncSession, player_id: uuid.UUID, collection: str, key: str
) -> PlayerDocument:
    row = await session.get(PlayerDocument, (player_id, collection, key))
    if row is None or row.deleted_at is not None:
        await require_player(session, player_id)
        raise DocumentNotFound()
    return row


async def collection_documents(
    session: AsyncSession, player_id: uuid.UUID, collection: str
) -> list[PlayerDocument]:
    rows = list(
        await session.scalars(
            select(PlayerDocument)
            .where(
                PlayerDocument.account_id == player_id,
                PlayerDocument.collection == collection,
                PlayerDocument.deleted_at.is_(None),
            )
            .order_by(PlayerDocument.key)
        )
    )
    if not rows:
        await require_player(session, player_id)
    return rows


async def document_index(session: AsyncSession, player_id: uuid.UUID) -> list[Any]:
    """Every document of the player without its value: collection, key, version, size, time."""
    rows = list(
        await session.execute(
            select(
                PlayerDocument.collection,
                PlayerDocument.key,
                PlayerDocument.version,
                PlayerDocument.size,
                PlayerDocument.updated_at,
            )
            .where(PlayerDocument.account_id == player_id, PlayerDocument.deleted_at.is_(None))
            .order_by(PlayerDocument.collection, PlayerDocument.key)
        )
    )
    if not rows:
        await require_player(session, player_id)
    return rows


async def recent_documents(
    session: AsyncSession, player_id: uuid.UUID, *, limit: int
) -> list[PlayerDocument]:
    """The player's most recently written documents, values included (for operators)."""
    query = (
        select(PlayerDocument)
        .where(PlayerDocument.account_id == player_id, PlayerDocument.deleted_at.is_(None))
        .order_by(PlayerDocument.updated_at.desc(), PlayerDocument.collection, PlayerDocument.key)
        .limit(limit)
    )
    return list(await session.scalars(query))


PURGE_BATCH = 300
"""Tombstones per statement: 3 values each, under old SQLite builds' 999 a statement."""


async def purge_tombstones(session: AsyncSession, clock: Clock, settings: Settings) -> int:
    """Forget a batch of deleted documents older than `players_tombstone_ttl`; the count."""
    cutoff = clock.now() - timedelta(seconds=settings.players_tombstone_ttl)
    old = list(
        await session.execute(
            select(PlayerDocument.account_id, PlayerDocument.collection, PlayerDocument.key)
            .where(PlayerDocument.deleted_at < cutoff)
            .limit(PURGE_BATCH)
        )
    )
    if old:
        await session.execute(
            delete(PlayerDocument).where(
                tuple_(
                    PlayerDocument.account_id, PlayerDocument.collection, PlayerDocument.key
                ).in_([tuple(row) for row in old]),
                PlayerDocument.deleted_at < cutoff,
            )
        )
    return len(old)
