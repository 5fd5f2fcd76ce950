"""Player accounts: email+password, device (anonymous) logins, linking, bans.

A wrong email and a wrong password get the same answer in the same time, so the login endpoint
cannot be used to find out who has an account.
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.errors import Conflict
from homeport.identity.auth_events import EventKind, record
from homeport.identity.context import Identity
from homeport.identity.errors import (
    AlreadyLinked,
    EmailTaken,
    InvalidCredentials,
    PlayerBanned,
    PlayerNotFound,
    WeakPassword,
)
from homeport.identity.models import Account, Device
from homeport.identity.service_sessions import IssuedSession, revoke_all_sessions, start_session

ANONYMOUS_NAME_PREFIX = "Player-"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _check_password(ident: Identity, password: str) -> None:
    settings = ident.settings
    if not settings.password_min_length <= len(password) <= settings.password_max_length:
        raise WeakPassword(
            f"Passwords must have {settings.password_min_length} to "
            f"{settings.password_max_length} characters",
            min_length=settings.password_min_length,
            max_length=settings.password_max_length,
        )


def _login_limits(ident: Identity, client_address: str, account_key: str | None) -> None:
    ident.login_by_address.check(client_address, "Too many attempts from this address")
    ident.login_by_address.hit(client_address)
    if account_key is not None:
        ident.login_failures_by_account.check(
            account_key, "Too many failed logins for this account"
        )


async def _email_in_use(session: AsyncSession, email: str) -> bool:
    found = await session.scalar(select(Account.id).where(Account.email == email))
    return found is not None


async def register(
    session: AsyncSession,
    ident: Identity,
    *,
    email: str,
    password: str,
    display_name: str,
    client_address: str,
) -> IssuedSession:
    _login_limits(ident, client_address, None)
    email = normalise_email(email)
    _check_password(ident, password)
    if await _email_in_use(session, email):
        raise EmailTaken()
    now = ident.clock.now()
    account = Account(
        id=uuid.uuid4(),
        email=email,
        password_hash=await ident.passwords.hash(password),
        display_name=display_name,
        created_at=now,
        updated_at=now,
    )
    session.add(account)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same email won
        raise EmailTaken() from exc
    return await start_session(session, ident, account, created=True)


async def login(
    session: AsyncSession, ident: Identity, *, email: str, password: str, client_address: str
) -> IssuedSession:
    email = normalise_email(email)
    _login_limits(ident, client_address, email)
    account = await session.scalar(select(Account).where(Account.email == email))
    ok = await ident.passwords.verify(account.password_hash if account else None, password)
    if account is None or not ok:
        ident.login_failures_by_account.hit(email)
        raise InvalidCredentials()
    if account.banned:
        raise PlayerBanned()
    ident.login_failures_by_account.reset(email)
    if account.password_hash and ident.passwords.needs_rehash(account.password_hash):
        account.password_hash = await ident.passwords.hash(password)
    return await start_session(session, ident, account)


def _device_hash(device_id: str) -> str:
    return hashlib.sha256(b"homeport-device:" + device_id.encode()).hexdigest()


async def device_login(
    session: AsyncSession,
    ident: Identity,
    *,
    device_id: str,
    display_name: str | None,
    client_address: str,
) -> IssuedSession:
    """Log in with a device id, creating an anonymous account the first time it is seen."""
    _login_limits(ident, client_address, None)
    id_hash = _device_hash(device_id)
    device = await session.get(Device, id_hash)
    if device is not None:
        account = await session.get(Account, device.account_id)
        if account is None:
            raise PlayerNotFound()
        if account.banned:
            raise PlayerBanned()
        return await start_session(session, ident, account)
    now = ident.clock.now()
    account_id = uuid.uuid4()
    account = Account(
        id=account_id,
        display_name=display_name or ANONYMOUS_NAME_PREFIX + account_id.hex[:8],
        created_at=now,
        updated_at=now,
    )
    session.add(account)
    await session.flush()
    session.add(Device(id_hash=id_hash, account_id=account.id, created_at=now))
    try:
        await session.flush()
    except IntegrityError as exc:  # the same new device raced itself; its retry will log in
        raise Conflict("This device was registered concurrently; try again") from exc
    return await start_session(session, ident, account, created=True)


async def link_email(
    session: AsyncSession, ident: Identity, *, account: Account, email: str, password: str
) -> Account:
    if account.email is not None:
        raise AlreadyLinked()
    email = normalise_email(email)
    _check_password(ident, password)
    if await _email_in_use(session, email):
        raise EmailTaken()
    account.email = email
    account.password_hash = await ident.passwords.hash(password)
    account.updated_at = ident.clock.now()
    try:
        await session.flush()
    except IntegrityError as exc:
        raise EmailTaken() from exc
    return account


async def get_account_or_raise(session: AsyncSession, account_id: uuid.UUID) -> Account:
    account = await session.get(Account, account_id)
    if account is None:
        raise PlayerNotFound()
    return account


async def set_banned(
    session: AsyncSession,
    ident: Identity,
    *,
    account_id: uuid.UUID,
    banned: bool,
    reason: str | None = None,
) -> Account:
    """Ban (revoking every session at once) or unban a player."""
    account = await get_account_or_raise(session, account_id)
    account.banned = banned
    account.banned_reason = reason if banned else None
    account.updated_at = ident.clock.now()
    if banned:
        await revoke_all_sessions(session, ident, account_id, reason="banned")
    record(session, ident.clock, EventKind.ACCOUNT, str(account_id))
    ident.caches.forget_account(account_id)
    return account
