"""Who is calling a player-data endpoint: a server or admin key, or a signed-in player."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from homeport.deps import StateDep, bearer
from homeport.identity.errors import TokenMissing
from homeport.identity.server_keys import PREFIXES
from homeport.identity.service_keys import authenticate_key
from homeport.identity.service_sessions import authenticate_player
from homeport.players.access import DataCaller
from homeport.state import AppState

_KEY_PREFIXES = tuple(PREFIXES.values())


async def get_data_caller(request: Request, state: StateDep) -> DataCaller:
    return await data_caller(state, bearer(request))


async def data_caller(state: AppState, token: str | None) -> DataCaller:
    """The key (by its prefix) or the player's access token behind a Bearer credential."""
    if token is None:
        raise TokenMissing()
    if token.startswith(_KEY_PREFIXES):
        await state.identity.events.poll_if_due(state.read_sessions, state.sessions)
        return DataCaller(key=await authenticate_key(state.identity, state.read_sessions, token))
    async with state.read_sessions() as session:
        player = await authenticate_player(session, state.identity, access_token=token)
    return DataCaller(player_id=player.account.id)


DataCallerDep = Annotated[DataCaller, Depends(get_data_caller)]
