"""One game server's next step, decided from its row, its registry entry and its process.

The agent calls `step` for every live server on each pass; every decision is written to the
row, and what must happen to the process is returned for the agent to do after the commit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeport.fleet.models import GameServer
from homeport.fleet.spec import FleetSpec
from homeport.fleet.spec import GameServerState as S


@dataclass(frozen=True)
class Listing:
    """The server's registry entry, as far as the fleet cares."""

    state: str
    players: int
    lease_expires_at: datetime
    directive: dict[str, Any] | None


class Do(enum.Enum):
    NOTHING = "nothing"
    TERMINATE = "terminate"
    KILL = "kill"
    END = "end"
    """The row just ended: revoke its key, drop its registry entry, forget the process."""
    CRASH = "crash"
    """Ended by a crash: as END, and the fleet's crash back-off grows."""
    READY = "ready"
    """Became ready: the fleet's crash back-off resets."""
    DIRECT = "direct"
    """The registry entry lacks the drain directive: set it."""


@dataclass(frozen=True)
class Process:
    running: bool
    exit_code: int | None


def end(row: GameServer, state: S, reason: str, now: datetime, code: int | None = None) -> None:
    row.state, row.reason, row.ended_at, row.exit_code = state.value, reason[:200], now, code
    row.players = 0


def start_drain(row: GameServer, state: S, reason: str, now: datetime) -> None:
    row.state, row.reason, row.drain_at = state.value, reason[:200], now


def _exited(row: GameServer, state: S, code: int, now: datetime) -> Do:
    if state in (S.DRAINING, S.UNHEALTHY):
        end(row, S.STOPPED, row.reason or "stopped", now, code)
        return Do.END
    if code == 0 and state in (S.READY, S.ALLOCATED):
        end(row, S.STOPPED, "exited by itself", now, code)
        return Do.END
    how = f"exited with status {code}" if code >= 0 else f"killed by signal {-code}"
    end(row, S.CRASHED, f"crashed: {how} while {state.value}", now, code)
    return Do.CRASH


def _watch(
    row: GameServer, state: S, listing: Listing | None, spec: FleetSpec, now: datetime
) -> Do:
    live = listing is not None and listing.lease_expires_at > now
    if state is S.STARTING:
        if live and listing is not None and listing.state == "ready":
            row.state, row.ready_at = S.READY.value, now
            row.players = listing.players
            row.empty_since = now if listing.players == 0 else None
            return Do.READY
        assert row.started_at is not None
        if (now - row.started_at).total_seconds() > spec.start_timeout:
            start_drain(row, S.UNHEALTHY, "unhealthy: not ready within start_timeout", now)
            return Do.TERMINATE
        return Do.NOTHING
    if listing is None:
        # It deregistered itself: a server on its way out (its match is over). It gets the
        # drain notice to exit by itself before any signal, like a drained server.
        start_drain(row, S.DRAINING, "deregistered itself", now)
        return Do.NOTHING
    if not live:
        start_drain(row, S.UNHEALTHY, "unhealthy: heartbeats stopped", now)
        return Do.TERMINATE
    if listing.players != row.players:
        row.players = listing.players
    if row.players > 0:
        row.empty_since = None
    elif row.empty_since is None:
        row.empty_since = now
    return Do.NOTHING


def _stop(
    row: GameServer, state: S, listing: Listing | None, spec: FleetSpec, now: datetime, beat: float
) -> Do:
    if row.term_at is None:
        # A server that never registered, or whose lease ran out, cannot hear the request: no
        # point waiting. One that deregistered itself is leaving: it gets the notice.
        never_registered = listing is None and row.ready_at is None
        lapsed = listing is not None and listing.lease_expires_at <= now
        unheard = state is S.UNHEALTHY or never_registered or lapsed
        notice = 0.0 if unheard else spec.notice(beat)
        if row.drain_at is None or (now - row.drain_at).total_seconds() >= notice:
            row.term_at = now
            return Do.TERMINATE
        if listing is not None and (listing.directive or {}).get("action") != "drain":
            return Do.DIRECT
        return Do.NOTHING
    if (now - row.term_at).total_seconds() >= spec.grace_period:
        if "SIGKILL" not in row.reason:
            row.reason = f"{row.reason} (SIGKILL after the grace period)"[:200]
        return Do.KILL
    return Do.NOTHING


def step(
    row: GameServer,
    listing: Listing | None,
    process: Process,
    spec: FleetSpec,
    now: datetime,
    *,
    heartbeat_interval: float,
) -> Do:
    state = S(row.state)
    if state is S.SCHEDULED:
        return Do.NOTHING  # the agent starts it, or the autoscaler cancels it
    if process.exit_code is not None:
        return _exited(row, state, process.exit_code, now)
    if not process.running:
        end(row, S.STOPPED, "lost: its process is not run by this agent", now)
        return Do.END
    if state in (S.DRAINING, S.UNHEALTHY):
        return _stop(row, state, listing, spec, now, heartbeat_interval)
    return _watch(row, state, listing, spec, now)
