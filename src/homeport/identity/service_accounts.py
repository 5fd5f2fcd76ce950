"""Player accounts: email+password, device (anonymous) logins, linking, bans.

A wrong email and a wrong password get the same answer in the same time, so the login endpoint
cannot be used to find out who has an account.

Password hashing takes tens of milliseconds, so it never runs inside the write transaction:
on SQLite that transaction holds the database's one write lock, which every other writer of every
worker would queue behind. Hashes are computed before the first query, and login looks the
account up through a read-only session before its write transaction begins.
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
    password_hash = await ident.passwords.hash(password)
    if await _email_in_use(session, email):
        raise EmailTaken()
    now = ident.clock.now()
    account = Account(
        id=uuid.uuid4(),
        email=email,
        password_hash=password_hash,
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
    session: AsyncSession,
    read: async_sessionmaker[AsyncSession],
    ident: Identity,
    *,
    email: str,
    password: str,
    client_address: str,
) -> IssuedSession:
    """Log in; `read` is a read-only session factory for the look-up done before hashing."""
    email = normalise_email(email)
    _login_limits(ident, client_address, email)
    # Counted before the slow verify, so concurrent guesses cannot all slip under the limit.
    ident.login_failures_by_account.hit(email)
    async with read() as lookup:
        query = select(Account.id, Account.password_hash).where(Account.email == email)
        row = (await lookup.execute(query)).first()
    stored_hash = row.password_hash if row is not None else None
    if not await ident.passwords.verify(stored_hash, password) or row is None:
        raise InvalidCredentials()
    account = await session.get(Account, row.id)
    if account is None or account.password_hash != stored_hash:
        raise InvalidCredentials()  # the password changed while it was being checked
    if account.banned:
        raise PlayerBanned()
    ident.login_failures_by_account.reset(email)
    if ident.passwords.needs_rehash(stored_hash or ""):
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
    session: AsyncSession,
    ident: Identity,
    *,
    account: Account,
    email: str,
    password: str,
    client_address: str,
) -> Account:
    """Give an anonymous account an email and password. `account` may come from another session."""
    if account.email is not None:
        raise AlreadyLinked()
    _login_limits(ident, client_address, None)
    email = normalise_email(email)
    _check_password(ident, password)
    password_hash = await ident.passwords.hash(password)
    if await _email_in_use(session, email):
        raise EmailTaken()
    current = await session.get(Account, account.id)
    if current is None:
        raise PlayerNotFound()
    if current.email is not None:
        raise AlreadyLinked()
    account = current
    account.email = email
    account.password_hash = password_hash
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


SEARCH_LIMIT = 50


async def search_accounts(
    session: AsyncSession, text: str, *, limit: int = SEARCH_LIMIT
) -> list[Account]:
    """Accounts an operator may mean by `text`: its id, its email, or part of the display name
    (any case). Newest first."""
    text = text.strip()
    try:
        return [account] if (account := await session.get(Account, uuid.UUID(text))) else []
    except ValueError:
        pass
    if not text or not text.isprintable():  # PostgreSQL refuses NUL in a text parameter
        return []
    query = (
        select(Account)
        .where(
            or_(
                Account.email == normalise_email(text),
                func.lower(Account.display_name).contains(text.lower(), autoescape=True),
            )
        )
        .order_by(Account.created_at.desc(), Account.id)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def display_names(
    session: AsyncSession, account_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    rows = await session.execute(
        select(Account.id, Account.display_name).where(Account.id.in_(account_ids))
    )
    return {row.id: row.display_name for row in rows}


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


async def erase(session: AsyncSession, ident: Identity, *, account_id: uuid.UUID) -> None:
    """Delete a player and everything kept about them (GDPR-style erasure), in one transaction:
    sessions, devices, documents, inventory and its ledger, leaderboard records and join tickets
    go with the account (their foreign keys cascade). Sessions are revoked first, so every
    process's validate cache drops them as it would after a ban."""
    await get_account_or_raise(session, account_id)
    await revoke_all_sessions(session, ident, account_id, reason="erased")
    record(session, ident.clock, EventKind.ACCOUNT, str(account_id))
    await session.flush()
    await session.execute(delete(Account).where(Account.id == account_id))
    ident.caches.forget_account(account_id)
