"""HTTP routes of inventories: `/v1/players/{player}/inventory...`.

Grants and consumes are for servers (a key with `players:write`) and need an `Idempotency-Key`
header: a retry with the same key answers what the first request answered, with
`Idempotent-Replayed: true`, and changes nothing.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response

from homeport.deps import SessionDep, StateDep
from homeport.errors import UnprocessableContent
from homeport.openapi import problems
from homeport.players import access, inventory
from homeport.players import errors as e
from homeport.players.callers import DataCallerDep
from homeport.players.routes import AUTH_ERRORS, PlayerRef
from homeport.players.schemas import (
    InventoryChangeRequest,
    InventoryOperationOut,
    InventoryOut,
    LedgerEntryOut,
    LedgerPage,
    StackOut,
)

router = APIRouter(tags=["inventory"])
_KEY = re.compile(r"[\x21-\x7e]{1,128}")
CHANGE_ERRORS = (
    *AUTH_ERRORS,
    e.InsufficientItems,
    e.IdempotencyKeyRequired,
    e.IdempotencyKeyReused,
)


def _idempotency_key(header: str | None) -> str:
    if header is None:
        raise e.IdempotencyKeyRequired(
            "Send an Idempotency-Key header (for example a UUID made once per change, and sent"
            " again with every retry of it)"
        )
    if not _KEY.fullmatch(header):
        raise UnprocessableContent(
            errors=[
                {
                    "loc": ["header", "idempotency-key"],
                    "msg": "1 to 128 visible ASCII characters",
                    "type": "value_error",
                }
            ]
        )
    return header


async def _change(
    kind: str,
    player: str,
    body: InventoryChangeRequest,
    caller: DataCallerDep,
    state: StateDep,
    session: SessionDep,
    response: Response,
    header: str | None,
) -> InventoryOperationOut:
    player_id = access.resolve_player(caller, player)
    access.require_key_scope(caller, access.WRITE)
    if caller.key is None:
        raise e.CollectionForbidden("Only servers change inventories")
    outcome = await inventory.change(
        session,
        state.clock,
        state.settings,
        caller,
        player_id=player_id,
        kind=kind,
        items=[(i.item, i.quantity) for i in body.items],
        reason=body.reason,
        idempotency_key=_idempotency_key(header),
    )
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return InventoryOperationOut.model_validate(outcome.response)


IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=256)]


@router.post(
    "/v1/players/{player}/inventory/{kind}",
    response_model=InventoryOperationOut,
    responses=problems(*CHANGE_ERRORS),
)
async def change_inventory(
    player: PlayerRef,
    kind: Literal["grant", "consume"],
    body: InventoryChangeRequest,
    caller: DataCallerDep,
    state: StateDep,
    session: SessionDep,
    response: Response,
    idempotency_key: IdempotencyHeader = None,
) -> InventoryOperationOut:
    """`grant` adds the items, `consume` takes them: all of them in one transaction, or (409
    `insufficient-items`) none. Once per Idempotency-Key."""
    operation = inventory.GRANT if kind == "grant" else inventory.CONSUME
    return await _change(operation, player, body, caller, state, session, response, idempotency_key)


@router.get(
    "/v1/players/{player}/inventory",
    response_model=InventoryOut,
    responses=problems(*AUTH_ERRORS),
)
async def read_inventory(player: PlayerRef, caller: DataCallerDep, state: StateDep) -> InventoryOut:
    """The player's item stacks: the player themselves, or a key with `players:read`."""
    player_id = access.resolve_player(caller, player)
    access.require_own_or_key(caller, player_id, access.READ)
    async with state.read_sessions() as session:
        rows = await inventory.stacks_of(session, player_id)
    return InventoryOut(items=[StackOut(item=r.item, quantity=r.quantity) for r in rows])


@router.get(
    "/v1/players/{player}/inventory/ledger",
    response_model=LedgerPage,
    responses=problems(*AUTH_ERRORS),
)
async def read_ledger(
    player: PlayerRef,
    caller: DataCallerDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
) -> LedgerPage:
    """Every change of the player's inventory, newest first, a page at a time."""
    player_id = access.resolve_player(caller, player)
    access.require_own_or_key(caller, player_id, access.READ)
    before = int(cursor) if cursor is not None else None
    async with state.read_sessions() as session:
        rows, next_id = await inventory.ledger_page(session, player_id, before=before, limit=limit)
    return LedgerPage(
        entries=[
            LedgerEntryOut(
                id=r.id,
                operation_id=str(r.operation_id),
                kind=r.kind,
                item=r.item,
                delta=r.delta,
                balance=r.balance,
                reason=r.reason,
                actor=r.actor,
                created_at=r.created_at,
            )
            for r in rows
        ],
        next_cursor=None if next_id is None else str(next_id),
    )
