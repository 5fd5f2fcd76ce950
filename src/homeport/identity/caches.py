"""Caches for the validate hot path: server keys' rows and sessions' state.

A revocation, ban or key revoke made in this process clears its entry at once (should a validate
re-cache the old state before the change commits, the change's auth event clears it again);
one made by another process (the CLI, another replica) reaches this one through
`identity.auth_events` within `auth_cache_ttl` seconds. Entries live at most
`auth_cache_max_age` seconds, which bounds how long a change made behind Homeport's back (by
hand in the database) can go unseen.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from homeport.clock import Clock

K = TypeVar("K")
V = TypeVar("V")
MAX_ENTRIES = 100_000
UNKNOWN_KEY_SECONDS = 5.0


class TTLCache(Generic[K, V]):
    def __init__(self, clock: Clock, ttl: float) -> None:
        self._clock = clock
        self._ttl = ttl
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self._clock.monotonic():
            self._items.pop(key, None)
            return None
        return item[1]

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0:
            return
        if len(self._items) >= MAX_ENTRIES:
            now = self._clock.monotonic()
            self._items = {k: v for k, v in self._items.items() if v[0] > now}
            if len(self._items) >= MAX_ENTRIES:
                self._items.clear()
        self._items[key] = (self._clock.monotonic() + self._ttl, value)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def drop_where(self, predicate: Any) -> None:
        for key in [k for k, (_, v) in self._items.items() if predicate(v)]:
            del self._items[key]


@dataclass(frozen=True, slots=True)
class CachedKey:
    id: uuid.UUID
    name: str
    kind: str
    key_hash: str
    scopes: frozenset[str]
    revoked: bool
    server_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class CachedSession:
    account_id: uuid.UUID
    refusal: type[Exception] | None
    player: dict[str, Any]


class AuthCaches:
    def __init__(self, clock: Clock, max_age: float) -> None:
        self.keys: TTLCache[str, CachedKey] = TTLCache(clock, max_age)
        # Lookup ids that matched no key: a flood of made-up keys costs one query per id a while.
        self.unknown_keys: TTLCache[str, bool] = TTLCache(clock, min(max_age, UNKNOWN_KEY_SECONDS))
        self.sessions: TTLCache[uuid.UUID, CachedSession] = TTLCache(clock, max_age)

    def forget_session(self, session_id: uuid.UUID) -> None:
        self.sessions.pop(session_id)

    def forget_account(self, account_id: uuid.UUID) -> None:
        self.sessions.drop_where(lambda s: s.account_id == account_id)

    def forget_key(self, lookup: str) -> None:
        self.keys.pop(lookup)
