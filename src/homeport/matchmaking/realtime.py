"""`/v1/realtime`: a WebSocket that pushes a player's tickets as they change.

The player signs in with the access token, in the `Authorization` header of the handshake
(Godot's `WebSocketPeer.handshake_headers`) or as the first message `{"token": "..."}`. It
then gets its active ticket at once, and each ticket of its every time one changes, as
`{"type": "ticket", "ticket": {...}}` — the same body `GET /v1/matchmaking/tickets/{id}`
answers, connect token included. With `?ticket=<id>` that ticket comes at once whatever its
state, so a client that opens the socket after queueing misses no change made in between.
`{"type": "ping"}` gets `{"type": "pong"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy import select

from homeport.db.session import unit_of_work
from homeport.deps import bearer_credentials
from homeport.errors import HomeportError
from homeport.identity.service_sessions import Authenticated, authenticate_player
from homeport.matchmaking import tickets
from homeport.matchmaking.models import Searching
from homeport.state import AppState

router = APIRouter()
SIGN_IN_SECONDS = 10.0
POLICY_VIOLATION = 1008
UNAUTHORIZED = 4401


async def _sign_in(websocket: WebSocket, state: AppState) -> Authenticated | None:
    token = bearer_credentials(websocket.headers.get("authorization"))
    if token is None:
        try:
            async with asyncio.timeout(SIGN_IN_SECONDS):
                first = orjson.loads(await websocket.receive_text())
            token = first.get("token") if isinstance(first, dict) else None
        except (TimeoutError, orjson.JSONDecodeError, WebSocketDisconnect):
            return None
    if not isinstance(token, str):
        return None
    try:
        async with state.read_sessions() as session:
            return await authenticate_player(session, state.identity, access_token=token)
    except HomeportError:
        return None


async def _push(
    websocket: WebSocket, state: AppState, who: Authenticated, ticket_id: uuid.UUID
) -> None:
    async with unit_of_work(state.sessions) as session:
        try:
            row = await tickets.get_own(session, ticket_id, who.account.id)
        except HomeportError:
            return
        body = await tickets.view(
            session,
            state.clock,
            state.settings,
            row,
            player=who.account.id,
            player_session=who.session_id,
        )
    await websocket.send_bytes(orjson.dumps({"type": "ticket", "ticket": body}))


def _ticket_asked(websocket: WebSocket) -> uuid.UUID | None:
    """`?ticket=<id>`: the ticket the client waits for (an id that is not one is ignored)."""
    try:
        return uuid.UUID(websocket.query_params.get("ticket", ""))
    except ValueError:
        return None


async def _answer_pings(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive_text()
        with contextlib.suppress(orjson.JSONDecodeError):
            parsed: Any = orjson.loads(message)
            if isinstance(parsed, dict) and parsed.get("type") == "ping":
                await websocket.send_bytes(orjson.dumps({"type": "pong"}))


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    state: AppState = websocket.app.state.homeport
    await websocket.accept()
    who = await _sign_in(websocket, state)
    if who is None:
        await websocket.close(UNAUTHORIZED, "sign in with a valid access token")
        return
    player = str(who.account.id)
    async with state.bus.subscribe(tickets.TOPIC) as feed:
        async with state.read_sessions() as session:
            active = await session.scalar(
                select(Searching.ticket_id).where(Searching.player_id == who.account.id)
            )
        await websocket.send_bytes(orjson.dumps({"type": "hello", "player_id": player}))
        awaited = _ticket_asked(websocket)
        if awaited is not None:  # whatever its state: it may have changed before we listened
            await _push(websocket, state, who, awaited)
        if active is not None and active != awaited:
            await _push(websocket, state, who, active)
        pings = asyncio.create_task(_answer_pings(websocket))
        try:
            while not pings.done():
                event = await feed.get(within=1.0)
                if event is not None and player in (event.data or {}).get("players", []):
                    await _push(websocket, state, who, uuid.UUID(event.subject))
        except WebSocketDisconnect:
            pass
        finally:
            pings.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await pings
