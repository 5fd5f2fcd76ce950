"""What the demo counts, shared by its players, its live view and its summary.

Rates (validations/s, saves/s) are over the last few seconds, so the view shows what the system
does now rather than an average since the start."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

RATE_WINDOW = 5.0


@dataclass
class DemoStats:
    started: float = field(default_factory=time.monotonic)
    counts: Counter[str] = field(default_factory=Counter)
    """registered, logins, refreshes, browses, tickets, matched, joins, xp, level_ups, saves…"""
    outcomes: Counter[str] = field(default_factory=Counter)
    """Refusals and races a real game meets too (a full or draining server, a ticket timed
    out): counted, not errors."""
    errors: list[str] = field(default_factory=list)
    players_served: set[str] = field(default_factory=set)
    matches: set[str] = field(default_factory=set)
    online: int = 0
    """Players connected to a game server right now."""
    searching: int = 0
    """Players whose ticket is searching right now."""
    _events: dict[str, deque[float]] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] += n
        if what in ("joins", "saves"):
            self._events.setdefault(what, deque()).extend([time.monotonic()] * n)

    def fail(self, message: str) -> None:
        self.errors.append(message)

    def rate(self, what: str) -> float:
        """Events per second over the last `RATE_WINDOW` seconds."""
        events = self._events.get(what, deque())
        now = time.monotonic()
        while events and events[0] < now - RATE_WINDOW:
            events.popleft()
        return len(events) / min(RATE_WINDOW, max(now - self.started, 1e-3))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
