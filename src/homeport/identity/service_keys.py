"""Creating, listing, revoking and checking server and admin API keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from homeport.clock import Clock
from homeport.identity import server_keys
from homeport.identity.auth_events import EventKind, record
from homeport.identity.caches import AuthCaches, CachedKey
from homeport.identity.context import Identity
from homeport.identity.errors import (
    AdminKeyRequired,
    KeyNameTaken,
    KeyNotFound,
    MissingScope,
    ServerKeyInvalid,
)
from homeport.identity.models import ServerKey
from homeport.identity.server_keys import KeyKind


@dataclass(frozen=True)
class CreatedKey:
    row: ServerKey
    key: str


async def create_key(
    session: AsyncSession,
    clock: Clock,
    *,
    name: str,
    kind: KeyKind,
    scopes: frozenset[str],
    server_id: uuid.UUID | None = None,
) -> CreatedKey:
    if await session.scalar(select(ServerKey.id).where(ServerKey.name == name)):
        raise KeyNameTaken()
    key, lookup, key_hash = server_keys.generate(kind)
    row = ServerKey(
        id=uuid.uuid4(),
        name=name,
        kind=kind.value,
        lookup=lookup,
        key_hash=key_hash,
        scopes=" ".join(sorted(scopes)),
        server_id=server_id,
        created_at=clock.now(),
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise KeyNameTaken() from exc
    return CreatedKey(row, key)


async def list_keys(session: AsyncSession) -> list[ServerKey]:
    return list(await session.scalars(select(ServerKey).order_by(ServerKey.created_at)))


async def revoke_key(
    session: AsyncSession, clock: Clock, caches: AuthCaches | None, *, name: str
) -> ServerKey:
    row = await session.scalar(select(ServerKey).where(ServerKey.name == name))
    if row is None:
        raise KeyNotFound()
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        record(session, clock, EventKind.KEY, row.lookup)
    if caches is not None:
        caches.forget_key(row.lookup)
    return row


@dataclass(frozen=True, slots=True)
class Caller:
    """A dedicated server or operator, as proven by its API key."""

    key_id: uuid.UUID
    name: str
    kind: KeyKind
    scopes: frozenset[str]
    server_id: uuid.UUID | None = None
    """A fleet server's key is bound to that server: it registers under this id."""

    @property
    def is_admin(self) -> bool:
        return self.kind is KeyKind.ADMIN


async def _load(factory: async_sessionmaker[AsyncSession], lookup: str) -> CachedKey | None:
    async with factory() as session:
        row = await session.scalar(select(ServerKey).where(ServerKey.lookup == lookup))
    if row is None:
        return None
    return CachedKey(
        id=row.id,
        name=row.name,
        kind=row.kind,
        key_hash=row.key_hash,
        scopes=frozenset(row.scopes.split()),
        revoked=row.revoked_at is not None,
        server_id=row.server_id,
    )


async def authenticate_key(
    ident: Identity, read: async_sessionmaker[AsyncSession], key: str | None
) -> Caller:
    """The caller behind an API key. `read` is a read-only session factory (no write lock)."""
    parsed = server_keys.parse(key) if key else None
    if parsed is None or key is None:
        raise ServerKeyInvalid()
    kind, lookup = parsed
    caches = ident.caches
    cached = caches.keys.get(lookup)
    if cached is None and caches.unknown_keys.get(lookup) is None:
        cached = await _load(read, lookup)
        if cached is None:
            caches.unknown_keys.put(lookup, True)
        else:
            caches.keys.put(lookup, cached)
    if (
        cached is None
        or cached.revoked
        or cached.kind != kind.value
        or not server_keys.matches(key, cached.key_hash)
    ):
        raise ServerKeyInvalid()
    return Caller(cached.id, cached.name, kind, cached.scopes, cached.server_id)


def require_scope(caller: Caller, scope: str) -> None:
    if caller.is_admin:
        return
    if scope not in caller.scopes:
        raise MissingScope(f"This key lacks the '{scope}' scope", required_scope=scope)


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise AdminKeyRequired()
