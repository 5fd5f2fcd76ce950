"""Sliding-window rate limits kept in process memory.

Each server process (every worker of every replica) counts on its own, so with P processes an
attacker gets at most P times the limit; that keeps the login path free of database writes.
Memory is bounded: idle keys are dropped.
"""

from __future__ import annotations

import math
from collections import deque

from homeport.clock import Clock
from homeport.errors import RateLimited

MAX_KEYS = 200_000


class SlidingWindow:
    def __init__(self, clock: Clock, *, limit: int, window: float) -> None:
        self._clock = clock
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def retry_after(self, key: str) -> int | None:
        """Seconds until `key` may try again, or None when it is under the limit."""
        now = self._clock.monotonic()
        hits = self._recent(key, now)
        if hits is None or len(hits) < self.limit:
            return None
        return max(1, math.ceil(hits[0] + self.window - now))

    def check(self, key: str, detail: str) -> None:
        wait = self.retry_after(key)
        if wait is not None:
            raise RateLimited(detail, retry_after=wait)

    def hit(self, key: str) -> None:
        now = self._clock.monotonic()
        hits = self._recent(key, now)
        if hits is None:
            if len(self._hits) >= MAX_KEYS:
                self._prune(now)
            hits = self._hits[key] = deque(maxlen=self.limit)
        hits.append(now)

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in list(self._hits):
            self._recent(key, now)
        if len(self._hits) >= MAX_KEYS:
            for key in list(self._hits)[: len(self._hits) // 2]:
                del self._hits[key]
