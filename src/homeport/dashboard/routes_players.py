"""Players: search, a profile with documents and inventory, ban, unban and erase."""

from __future__ import annotations

import uuid

import orjson
from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from homeport.dashboard.deps import AdminSessionDep, FormDep, router
from homeport.dashboard.render import page, see_other
from homeport.db.session import unit_of_work
from homeport.deps import StateDep
from homeport.errors import UnprocessableContent
from homeport.identity import service_accounts as accounts
from homeport.players import documents, inventory

routes = router()
SHOWN_DOCUMENTS = 50
SHOWN_LEDGER = 50
VALUE_PREVIEW = 2000
REASON_MAX = 500
ERASE_WORD = "erase"


@routes.get("/admin/players")
async def players(request: Request, state: StateDep, _admin: AdminSessionDep) -> HTMLResponse:
    query = request.query_params.get("q", "")[:254].strip()
    found = []
    if query:
        async with state.read_sessions() as session:
            found = await accounts.search_accounts(session, query)
    erased = request.query_params.get("erased") == "1"
    return page(request, "players.html", query=query, players=found, erased=erased)


def _preview(value: object) -> str:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    return text if len(text) <= VALUE_PREVIEW else text[:VALUE_PREVIEW] + "\n…"


@routes.get("/admin/players/{player_id}")
async def player(
    player_id: uuid.UUID, request: Request, state: StateDep, _admin: AdminSessionDep
) -> HTMLResponse:
    async with state.read_sessions() as session:
        account = await accounts.get_account_or_raise(session, player_id)
        docs = await documents.recent_documents(session, player_id, limit=SHOWN_DOCUMENTS)
        stacks = await inventory.stacks_of(session, player_id)
        ledger, _ = await inventory.ledger_page(session, player_id, before=None, limit=SHOWN_LEDGER)
    return page(
        request,
        "player.html",
        player=account,
        documents=[(doc, _preview(doc.value)) for doc in docs],
        stacks=stacks,
        ledger=ledger,
        erase_word=ERASE_WORD,
    )


@routes.post("/admin/players/{player_id}/ban")
async def ban(player_id: uuid.UUID, form: FormDep, state: StateDep) -> Response:
    """Ban: every session is revoked, logins and validation refuse the player from now on."""
    reason = form.get("reason", "").strip()
    if len(reason) > REASON_MAX or not reason.isprintable():
        raise UnprocessableContent(f"reason: printable text of at most {REASON_MAX} characters")
    async with unit_of_work(state.sessions) as session:
        await accounts.set_banned(
            session, state.identity, account_id=player_id, banned=True, reason=reason or None
        )
    return see_other(f"/admin/players/{player_id}")


@routes.post("/admin/players/{player_id}/unban")
async def unban(player_id: uuid.UUID, _form: FormDep, state: StateDep) -> Response:
    async with unit_of_work(state.sessions) as session:
        await accounts.set_banned(session, state.identity, account_id=player_id, banned=False)
    return see_other(f"/admin/players/{player_id}")


@routes.post("/admin/players/{player_id}/erase")
async def erase(player_id: uuid.UUID, form: FormDep, state: StateDep) -> Response:
    """Erase the player and everything kept about them; the form must say `erase` in words,
    so a stray click cannot do it."""
    if form.get("confirm", "").strip().lower() != ERASE_WORD:
        raise UnprocessableContent(f"Type “{ERASE_WORD}” to confirm the erasure")
    async with unit_of_work(state.sessions) as session:
        await accounts.erase(session, state.identity, account_id=player_id)
    return see_other("/admin/players?erased=1")
