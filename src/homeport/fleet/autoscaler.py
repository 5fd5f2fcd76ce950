"""How many servers a fleet should start or drain now: a pure function of what runs, so its
rules can be checked against every situation (see the property tests), not only a few.

Agones' buffer policy: servers in use (allocated, or ready with players on them) plus `buffer`
ready empty ones, kept within `min_ready` and `max_servers`; or a fixed size (`replicas`).
A server with players on it is never chosen to drain; a surplus empty one is, once it has
stayed empty for `scale_down_delay`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from homeport.fleet.spec import GameServerState as S
from homeport.fleet.spec import ScalingPolicy


@dataclass(frozen=True)
class ServerView:
    id: uuid.UUID
    state: S
    players: int
    created_at: datetime
    empty_since: datetime | None = None
    allocated_at: datetime | None = None


@dataclass
class Plan:
    start: int = 0
    cancel: list[uuid.UUID] = field(default_factory=list)
    """Scheduled servers no longer wanted: they end without ever starting."""
    drain: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    """Servers to drain, each with the reason."""


COUNTED = (S.SCHEDULED, S.STARTING, S.READY, S.ALLOCATED)
"""Draining and unhealthy servers are on their way out: they are replaced, not counted."""


def _empty_for(server: ServerView, now: datetime) -> float:
    since = server.empty_since
    if since is None or server.players > 0:
        return 0.0
    if server.allocated_at is not None and server.allocated_at > since:
        since = server.allocated_at
    return (now - since).total_seconds()


def target(policy: ScalingPolicy, in_use: int) -> int:
    if policy.replicas is not None:
        return min(policy.replicas, policy.max_servers)
    return min(max(in_use + policy.buffer, policy.min_ready), policy.max_servers)


def plan(policy: ScalingPolicy, servers: list[ServerView], now: datetime) -> Plan:
    result = Plan()
    counted = [s for s in servers if s.state in COUNTED]
    for server in counted:
        if server.state is S.ALLOCATED and _empty_for(server, now) >= policy.allocated_idle_timeout:
            result.drain.append((server.id, "allocated, and no player for too long"))
    idle_allocated = {server_id for server_id, _ in result.drain}
    counted = [s for s in counted if s.id not in idle_allocated]
    in_use = sum(
        1 for s in counted if s.state is S.ALLOCATED or (s.state is S.READY and s.players > 0)
    )
    wanted = target(policy, in_use)
    if len(counted) < wanted:
        result.start = wanted - len(counted)
        return result
    surplus = len(counted) - wanted
    # Not started yet: cheapest to give up, newest first.
    for server in sorted(
        (s for s in counted if s.state is S.SCHEDULED), key=lambda s: s.created_at, reverse=True
    ):
        if surplus == 0:
            return result
        result.cancel.append(server.id)
        surplus -= 1
    delay = 0.0 if policy.replicas is not None else policy.scale_down_delay
    idle = sorted(
        (
            s
            for s in counted
            if s.state is S.READY and s.players == 0 and _empty_for(s, now) >= delay
        ),
        key=lambda s: (s.empty_since or s.created_at, s.created_at),
    )
    for server in idle[:surplus]:
        result.drain.append((server.id, "scaled down: empty and not needed"))
    return result
