"""Shared FastAPI dependencies: the app state, a unit-of-work session, callers' credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.db.session import unit_of_work
from homeport.identity.errors import TokenMissing
from homeport.identity.service_keys import (
    Caller,
    authenticate_key,
    require_admin,
    require_scope,
)
from homeport.identity.service_sessions import Authenticated, authenticate_player
from homeport.netaddr import client_address
from homeport.state import AppState


# Dependencies are async: FastAPI runs plain `def` ones in a thread pool, a cost on every request.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.homeport
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with unit_of_work(state.sessions) as session:
        yield session


# scope="function": commit before the response is sent, so a 2xx means the write is durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def bearer_credentials(header: str | None) -> str | None:
    """The credentials of an `Authorization: Bearer …` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def bearer(request: Request) -> str | None:
    return bearer_credentials(request.headers.get("authorization"))


async def get_client_address(request: Request, state: StateDep) -> str:
    peer = request.client.host if request.client else None
    # Proxies may add their own header line instead of appending: read every line, in order.
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
    return client_address(peer, forwarded, state.settings)


ClientAddressDep = Annotated[str, Depends(get_client_address)]


async def get_player(request: Request, state: StateDep) -> Authenticated:
    """The player behind the Bearer access token, read without taking SQLite's write lock."""
    token = bearer(request)
    if token is None:
        raise TokenMissing()
    async with state.read_sessions() as session:
        return await authenticate_player(session, state.identity, access_token=token)


PlayerDep = Annotated[Authenticated, Depends(get_player)]


async def get_admin(request: Request, state: StateDep) -> Caller:
    await state.identity.events.poll_if_due(state.read_sessions, state.sessions)
    caller = await authenticate_key(state.identity, state.read_sessions, bearer(request))
    require_admin(caller)
    return caller


AdminDep = Annotated[Caller, Depends(get_admin)]


def server_key(scope: str) -> Any:
    """A dependency: the caller behind a server (or admin) key that holds `scope`."""

    async def dependency(request: Request, state: StateDep) -> Caller:
        await state.identity.events.poll_if_due(state.read_sessions, state.sessions)
        caller = await authenticate_key(state.identity, state.read_sessions, bearer(request))
        require_scope(caller, scope)
        return caller

    return Depends(dependency)


RegistryKeyDep = Annotated[Caller, server_key("registry")]
