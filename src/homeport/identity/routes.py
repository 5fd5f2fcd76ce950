"""HTTP routes of identity: parse, call one service, shape the answer."""

from __future__ import annotations

import uuid

import orjson
from fastapi import APIRouter, Request, Response
from starlette import status

from homeport.deps import (
    AdminDep,
    ClientAddressDep,
    PlayerDep,
    SessionDep,
    StateDep,
    bearer,
)
from homeport.errors import RateLimited
from homeport.identity import errors as e
from homeport.identity import service_accounts as accounts
from homeport.identity import service_sessions as sessions
from homeport.identity.schemas import (
    AdminPlayerOut,
    BanRequest,
    DeviceRequest,
    LinkEmailRequest,
    LoginRequest,
    LogoutRequest,
    PlayerOut,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
)
from homeport.openapi import problems

router = APIRouter(tags=["identity"])
TOKEN_ERRORS = (e.TokenMissing, e.TokenInvalid, e.TokenExpired, e.SessionRevoked, e.PlayerBanned)


@router.post(
    "/v1/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenPair,
    responses=problems(e.EmailTaken, e.WeakPassword, RateLimited),
)
async def register(
    body: RegisterRequest, state: StateDep, session: SessionDep, address: ClientAddressDep
) -> TokenPair:
    """Create an account with email and password, and log it in."""
    issued = await accounts.register(
        session,
        state.identity,
        email=str(body.email),
        password=body.password,
        display_name=body.display_name,
        client_address=address,
    )
    return TokenPair.of(issued, state.clock.now())


@router.post(
    "/v1/auth/login",
    response_model=TokenPair,
    responses=problems(e.InvalidCredentials, e.PlayerBanned, RateLimited),
)
async def login(
    body: LoginRequest, state: StateDep, session: SessionDep, address: ClientAddressDep
) -> TokenPair:
    """Log in with email and password: an access token and a refresh token."""
    issued = await accounts.login(
        session,
        state.read_sessions,
        state.identity,
        email=body.email,
        password=body.password,
        client_address=address,
    )
    return TokenPair.of(issued, state.clock.now())


@router.post(
    "/v1/auth/device",
    response_model=TokenPair,
    responses={
        201: {"description": "A new anonymous account", "model": TokenPair},
        **problems(e.PlayerBanned, RateLimited),
    },
)
async def device(
    body: DeviceRequest,
    state: StateDep,
    session: SessionDep,
    address: ClientAddressDep,
    response: Response,
) -> TokenPair:
    """Log in with a device id; the first time, an anonymous account is created (201)."""
    issued = await accounts.device_login(
        session,
        state.identity,
        device_id=body.device_id,
        display_name=body.display_name,
        client_address=address,
    )
    if issued.created:
        response.status_code = status.HTTP_201_CREATED
    return TokenPair.of(issued, state.clock.now())


@router.post(
    "/v1/auth/link/email",
    response_model=PlayerOut,
    responses=problems(*TOKEN_ERRORS, e.AlreadyLinked, e.EmailTaken, e.WeakPassword),
)
async def link_email(
    body: LinkEmailRequest,
    state: StateDep,
    session: SessionDep,
    player: PlayerDep,
    address: ClientAddressDep,
) -> PlayerOut:
    """Give the caller's anonymous account an email and password."""
    account = await accounts.link_email(
        session,
        state.identity,
        account=player.account,
        email=str(body.email),
        password=body.password,
        client_address=address,
    )
    return PlayerOut.of(account)


@router.post(
    "/v1/auth/refresh",
    response_model=TokenPair,
    responses=problems(e.RefreshTokenInvalid, e.RefreshTokenReused, e.PlayerBanned),
)
async def refresh(body: RefreshRequest, state: StateDep, session: SessionDep) -> TokenPair:
    """Trade a refresh token (once) for new tokens; replaying a spent one ends the session."""
    issued = await sessions.refresh(session, state.identity, refresh_token=body.refresh_token)
    return TokenPair.of(issued, state.clock.now())


@router.post(
    "/v1/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*TOKEN_ERRORS, e.RefreshTokenInvalid),
)
async def logout(
    request: Request, state: StateDep, session: SessionDep, body: LogoutRequest | None = None
) -> None:
    """End a session: with its access token (Bearer), or with its refresh token in the body."""
    token = bearer(request)
    if token is not None:
        player = await sessions.authenticate_player(session, state.identity, access_token=token)
        await sessions.revoke_session(session, state.identity, player.session_id, reason="logout")
    elif body is not None and body.refresh_token:
        await sessions.logout_by_refresh_token(
            session, state.identity, refresh_token=body.refresh_token
        )
    else:
        raise e.TokenMissing("Give the access token as Bearer, or the refresh token in the body")


@router.get("/v1/me", response_model=PlayerOut, responses=problems(*TOKEN_ERRORS))
async def me(player: PlayerDep) -> PlayerOut:
    """The caller's own account."""
    return PlayerOut.of(player.account)


@router.get("/.well-known/jwks.json", tags=["identity"])
async def jwks(state: StateDep) -> Response:
    """The public keys that verify access tokens, for servers that verify offline."""
    return Response(
        orjson.dumps(state.identity.ring.jwks()),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get(
    "/v1/admin/players/{player_id}",
    response_model=AdminPlayerOut,
    responses=problems(e.ServerKeyInvalid, e.AdminKeyRequired, e.PlayerNotFound),
)
async def admin_get_player(
    player_id: uuid.UUID, session: SessionDep, _admin: AdminDep
) -> AdminPlayerOut:
    """A player's account, ban state included."""
    return AdminPlayerOut.of(await accounts.get_account_or_raise(session, player_id))


@router.post(
    "/v1/admin/players/{player_id}/ban",
    response_model=AdminPlayerOut,
    responses=problems(e.ServerKeyInvalid, e.AdminKeyRequired, e.PlayerNotFound),
)
async def ban(
    player_id: uuid.UUID,
    state: StateDep,
    session: SessionDep,
    _admin: AdminDep,
    body: BanRequest | None = None,
) -> AdminPlayerOut:
    """Ban a player: every session is revoked and validation refuses them from now on."""
    account = await accounts.set_banned(
        session,
        state.identity,
        account_id=player_id,
        banned=True,
        reason=body.reason if body else None,
    )
    return AdminPlayerOut.of(account)


@router.post(
    "/v1/admin/players/{player_id}/unban",
    response_model=AdminPlayerOut,
    responses=problems(e.ServerKeyInvalid, e.AdminKeyRequired, e.PlayerNotFound),
)
async def unban(
    player_id: uuid.UUID, state: StateDep, session: SessionDep, _admin: AdminDep
) -> AdminPlayerOut:
    """Lift a ban. Sessions revoked by the ban stay revoked."""
    account = await accounts.set_banned(session, state.identity, account_id=player_id, banned=False)
    return AdminPlayerOut.of(account)


@router.delete(
    "/v1/admin/players/{player_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(e.ServerKeyInvalid, e.AdminKeyRequired, e.PlayerNotFound),
)
async def erase(
    player_id: uuid.UUID, state: StateDep, session: SessionDep, _admin: AdminDep
) -> Response:
    """Erase a player: the account and everything kept about them (documents, inventory and
    its ledger, leaderboard records, sessions, devices), all at once. Irreversible."""
    await accounts.erase(session, state.identity, account_id=player_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
