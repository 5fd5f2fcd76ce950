"""Inventory: item stacks per player, changed by idempotent grants and consumes.

A game server retries when a response is lost; a retry must not grant twice. Every change
carries an `Idempotency-Key`: the first request with a key applies and stores its answer, in
the same transaction; a retry with the same key and the same request gets that answer and
changes nothing; the same key with another request is refused. Concurrent retries queue on the
player's write turn (see `documents.lock_player`), so the second sees the first's record.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.errors import UnprocessableContent
from homeport.players.access import DataCaller
from homeport.players.documents import lock_player, require_player
from homeport.players.errors import IdempotencyKeyReused, InsufficientItems
from homeport.players.models import InventoryChange, InventoryOperation, InventoryStack
from homeport.settings import Settings
from homeport.timefmt import rfc3339

GRANT, CONSUME = "grant", "consume"
MAX_STACK = 10**18
"""Below BIGINT's limit, so a stack can always take one more grant's check."""
PURGE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Outcome:
    response: dict[str, Any]
    replayed: bool


def _digest(actor: str, kind: str, items: list[tuple[str, int]], reason: str) -> str:
    # Who asked is part of the request: another server reusing a key for its own grant gets a
    # loud `idempotency-key-reused`, never a silent replay of someone else's answer.
    canonical = orjson.dumps([actor, kind, items, reason])
    return hashlib.sha256(canonical).hexdigest()


def _merged(items: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """One entry per item, in first-seen order: `gold` twice in a request is one change."""
    totals: dict[str, int] = {}
    for item, quantity in items:
        totals[item] = totals.get(item, 0) + quantity
    return list(totals.items())


async def change(
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    caller: DataCaller,
    *,
    player_id: uuid.UUID,
    kind: str,
    items: list[tuple[str, int]],
    reason: str,
    idempotency_key: str,
) -> Outcome:
    """Grant or consume `items` for the player, once per idempotency key."""
    await lock_player(session, settings, player_id)
    now = clock.now()
    digest = _digest(caller.actor, kind, items, reason)
    previous = await session.get(InventoryOperation, (player_id, idempotency_key))
    if previous is not None:
        if previous.created_at > now - timedelta(seconds=settings.players_idempotency_ttl):
            if previous.request_hash != digest:
                raise IdempotencyKeyReused()
            return Outcome(previous.response, replayed=True)
        await session.delete(previous)  # remembered long enough: the key is free again
        await session.flush()

    merged = _merged(items)
    stacks = {
        row.item: row
        for row in await session.scalars(
            select(InventoryStack).where(
                InventoryStack.account_id == player_id,
                InventoryStack.item.in_([item for item, _ in merged]),
            )
        )
    }
    operation_id = uuid.uuid4()
    changes: list[dict[str, Any]] = []
    for item, quantity in merged:
        stack = stacks.get(item)
        held = stack.quantity if stack is not None else 0
        delta = quantity if kind == GRANT else -quantity
        balance = held + delta
        if balance < 0:
            raise InsufficientItems(
                f"The player holds {held} of '{item}', not {quantity}",
                item=item,
                held=held,
                requested=quantity,
            )
        if balance > MAX_STACK:
            raise UnprocessableContent(
                errors=[
                    {
                        "loc": ["body", "items"],
                        "msg": f"'{item}' would exceed {MAX_STACK}",
                        "type": "too_large",
                    }
                ]
            )
        if stack is None:
            session.add(
                InventoryStack(account_id=player_id, item=item, quantity=balance, updated_at=now)
            )
        elif balance == 0:
            await session.delete(stack)
        else:
            stack.quantity = balance
            stack.updated_at = now
        session.add(
            InventoryChange(
                account_id=player_id,
                operation_id=operation_id,
                kind=kind,
                item=item,
                delta=delta,
                balance=balance,
                reason=reason,
                actor=caller.actor,
                created_at=now,
            )
        )
        changes.append({"item": item, "delta": delta, "balance": balance})
    response = {
        "operation_id": str(operation_id),
        "kind": kind,
        "items": changes,
        "created_at": rfc3339(now),
    }
    session.add(
        InventoryOperation(
            account_id=player_id,
            idempotency_key=idempotency_key,
            id=operation_id,
            kind=kind,
            request_hash=digest,
            status=200,
            response=response,
            created_at=now,
        )
    )
    await session.flush()
    return Outcome(response, replayed=False)


async def stacks_of(session: AsyncSession, player_id: uuid.UUID) -> list[InventoryStack]:
    rows = list(
        await session.scalars(
            select(InventoryStack)
            .where(InventoryStack.account_id == player_id)
            .order_by(InventoryStack.item)
        )
    )
    if not rows:
        await require_player(session, player_id)
    return rows


async def ledger_page(
    session: AsyncSession, player_id: uuid.UUID, *, before: int | None, limit: int
) -> tuple[list[InventoryChange], int | None]:
    """Newest changes first; the id to pass as `before` for the next page (None: no more)."""
    query = select(InventoryChange).where(InventoryChange.account_id == player_id)
    if before is not None:
        query = query.where(InventoryChange.id < before)
    rows = list(await session.scalars(query.order_by(InventoryChange.id.desc()).limit(limit + 1)))
    if not rows:
        await require_player(session, player_id)
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], rows[limit - 1].id


async def purge_idempotency(session: AsyncSession, clock: Clock, settings: Settings) -> int:
    """Forget a batch of idempotency keys older than `players_idempotency_ttl`; the count."""
    cutoff = clock.now() - timedelta(seconds=settings.players_idempotency_ttl)
    old = list(
        await session.execute(
            select(InventoryOperation.account_id, InventoryOperation.idempotency_key)
            .where(InventoryOperation.created_at < cutoff)
            .limit(PURGE_BATCH)
        )
    )
    for account_id, key in old:
        await session.execute(
            delete(InventoryOperation).where(
                InventoryOperation.account_id == account_id,
                InventoryOperation.idempotency_key == key,
                InventoryOperation.created_at < cutoff,
            )
        )
    return len(old)
