"""What identity's services share for the life of the process: keys, hasher, limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from homeport.clock import Clock
from homeport.identity.auth_events import AuthEventFeed
from homeport.identity.caches import AuthCaches
from homeport.identity.passwords import PasswordHasher
from homeport.identity.signing import KeyRing, KeyStore
from homeport.identity.tokens import TokenIssuer
from homeport.ratelimit import SlidingWindow
from homeport.settings import Settings


@dataclass
class Identity:
    settings: Settings
    clock: Clock
    passwords: PasswordHasher
    ring: KeyRing
    tokens: TokenIssuer
    login_by_address: SlidingWindow
    login_failures_by_account: SlidingWindow
    caches: AuthCaches = field(init=False)
    events: AuthEventFeed = field(init=False)

    def __post_init__(self) -> None:
        enabled = self.settings.auth_cache_ttl > 0
        max_age = self.settings.auth_cache_max_age if enabled else 0.0
        self.caches = AuthCaches(self.clock, max_age=max_age)
        self.events = AuthEventFeed(self.clock, self.caches, self.settings.auth_cache_ttl)


def build_identity(settings: Settings, clock: Clock) -> Identity:
    ring = KeyRing(KeyStore(settings, clock), clock)
    return Identity(
        settings=settings,
        clock=clock,
        passwords=PasswordHasher(settings),
        ring=ring,
        tokens=TokenIssuer(settings, clock, ring),
        login_by_address=SlidingWindow(
            clock, limit=settings.auth_address_max_attempts, window=settings.auth_address_window
        ),
        login_failures_by_account=SlidingWindow(
            clock, limit=settings.auth_login_max_failures, window=settings.auth_login_failure_window
        ),
    )
