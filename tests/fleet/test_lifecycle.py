"""A server's next step in the cases that are easy to get wrong, without any process."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from homeport.fleet.lifecycle import Do, Listing, Process, step
from homeport.fleet.models import GameServer
from homeport.fleet.spec import FleetSpec
from homeport.fleet.spec import GameServerState as S

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SPEC = FleetSpec(drain_notice=10, grace_period=5)
RUNNING = Process(running=True, exit_code=None)


def _row(state: S, *, ready: bool = True) -> GameServer:
    return GameServer(
        id=uuid.uuid4(),
        fleet="demo",
        state=state.value,
        players=0,
        reason="",
        created_at=NOW - timedelta(minutes=5),
        started_at=NOW - timedelta(minutes=5),
        ready_at=NOW - timedelta(minutes=4) if ready else None,
    )


def _listing(expires_in: float) -> Listing:
    return Listing("ready", 0, NOW + timedelta(seconds=expires_in), None)


def test_a_server_that_deregistered_itself_gets_time_to_exit() -> None:
    row = _row(S.ALLOCATED)
    assert step(row, None, RUNNING, SPEC, NOW, heartbeat_interval=30) is Do.NOTHING
    assert row.state == "draining"
    later = NOW + timedelta(seconds=5)
    assert step(row, None, RUNNING, SPEC, later, heartbeat_interval=30) is Do.NOTHING
    exited = Process(running=False, exit_code=0)
    assert step(row, None, exited, SPEC, later, heartbeat_interval=30) is Do.END
    assert (row.state, row.exit_code) == ("stopped", 0)


def test_a_deregistered_server_that_does_not_exit_gets_sigterm_after_the_notice() -> None:
    row = _row(S.READY)
    step(row, None, RUNNING, SPEC, NOW, heartbeat_interval=30)
    late = NOW + timedelta(seconds=11)
    assert step(row, None, RUNNING, SPEC, late, heartbeat_interval=30) is Do.TERMINATE
    killed = late + timedelta(seconds=6)
    assert step(row, None, RUNNING, SPEC, killed, heartbeat_interval=30) is Do.KILL


def test_a_lapsed_lease_is_unhealthy_and_gets_sigterm_at_once() -> None:
    row = _row(S.READY)
    assert step(row, _listing(-1), RUNNING, SPEC, NOW, heartbeat_interval=30) is Do.TERMINATE
    assert row.state == "unhealthy"


def test_a_drain_before_registering_goes_straight_to_sigterm() -> None:
    row = _row(S.DRAINING, ready=False)
    row.drain_at = NOW
    assert step(row, None, RUNNING, SPEC, NOW, heartbeat_interval=30) is Do.TERMINATE


def test_a_registered_server_asked_to_drain_gets_the_notice_first() -> None:
    row = _row(S.DRAINING)
    row.drain_at = NOW
    assert step(row, _listing(60), RUNNING, SPEC, NOW, heartbeat_interval=30) is Do.DIRECT
    soon = NOW + timedelta(seconds=10)
    assert step(row, _listing(60), RUNNING, SPEC, soon, heartbeat_interval=30) is Do.TERMINATE
