"""Request and response bodies of the identity endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from homeport.identity.models import Account
from homeport.identity.service_sessions import IssuedSession
from homeport.validators import printable

DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
    AfterValidator(printable),
]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
Email = Annotated[EmailStr, Field(max_length=254)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Strict):
    email: Email
    password: Password
    display_name: DisplayName


class LoginRequest(Strict):
    email: Annotated[str, Field(min_length=1, max_length=254), AfterValidator(printable)]
    password: Password


class DeviceRequest(Strict):
    device_id: Annotated[str, Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
    display_name: DisplayName | None = None


class LinkEmailRequest(Strict):
    email: Email
    password: Password


class RefreshRequest(Strict):
    refresh_token: Annotated[str, Field(min_length=1, max_length=256)]


class LogoutRequest(Strict):
    refresh_token: Annotated[str | None, Field(max_length=256)] = None


class PlayerOut(BaseModel):
    id: uuid.UUID
    display_name: str
    email: str | None
    is_anonymous: bool
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> PlayerOut:
        return cls(
            id=account.id,
            display_name=account.display_name,
            email=account.email,
            is_anonymous=account.is_anonymous,
            created_at=account.created_at,
        )


class TokenPair(BaseModel):
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    access_token: str
    expires_in: int
    expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    session_id: uuid.UUID
    created: bool
    player: PlayerOut

    @classmethod
    def of(cls, issued: IssuedSession, now: datetime) -> TokenPair:
        return cls(
            access_token=issued.access_token,
            expires_in=int((issued.access_expires_at - now).total_seconds()),
            expires_at=issued.access_expires_at,
            refresh_token=issued.refresh_token,
            refresh_expires_at=issued.refresh_expires_at,
            session_id=issued.session_id,
            created=issued.created,
            player=PlayerOut.of(issued.account),
        )


class ValidateRequest(Strict):
    player_token: Annotated[str, Field(min_length=1, max_length=4096)]
    """The player's access token, or a join ticket (`hp_jt_…`) for one of the caller's servers."""
    server_id: uuid.UUID | None = None
    """The caller's server the player joins: checked against the ticket, and needed for servers
    that admit players only with join tickets."""


class ValidatedPlayer(BaseModel):
    id: uuid.UUID
    display_name: str
    created_at: datetime
    is_anonymous: bool


class ValidatedSession(BaseModel):
    id: uuid.UUID
    expires_at: datetime


class ValidateResponse(BaseModel):
    player: ValidatedPlayer
    session: ValidatedSession
    data: dict[str, object]
    """The player's documents of the collections in `players_validate_collections` (default
    `profile`): `{collection: {key: {"value": {...}, "version": n}}}`."""
    server_id: uuid.UUID | None = None
    """The server a join ticket was for; null for an access token."""


class BanRequest(Strict):
    reason: Annotated[str, Field(max_length=500), AfterValidator(printable)] | None = None


class AdminPlayerOut(PlayerOut):
    banned: bool
    banned_reason: str | None

    @classmethod
    def of(cls, account: Account) -> AdminPlayerOut:
        return cls(
            **PlayerOut.of(account).model_dump(),
            banned=account.banned,
            banned_reason=account.banned_reason,
        )
