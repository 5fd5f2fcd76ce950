"""The autoscaler's rules, checked against generated fleets rather than a few examples."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from homeport.fleet.autoscaler import COUNTED, ServerView, plan, target
from homeport.fleet.spec import GameServerState as S
from homeport.fleet.spec import ScalingPolicy

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@st.composite
def policies(draw: st.DrawFn) -> ScalingPolicy:
    max_servers = draw(st.integers(0, 12))
    return ScalingPolicy(
        buffer=draw(st.integers(0, 6)),
        min_ready=draw(st.integers(0, max_servers)),
        max_servers=max_servers,
        scale_down_delay=draw(st.sampled_from([0.0, 30.0, 120.0])),
        replicas=draw(st.none() | st.integers(0, 15)),
        allocated_idle_timeout=draw(st.sampled_from([60.0, 600.0])),
    )


@st.composite
def servers(draw: st.DrawFn) -> ServerView:
    state = draw(st.sampled_from(list(S)))
    players = draw(st.integers(0, 3)) if state in (S.READY, S.ALLOCATED) else 0
    empty_for = draw(st.none() | st.integers(0, 1000))
    return ServerView(
        id=uuid.uuid4(),
        state=state,
        players=players,
        created_at=NOW - timedelta(seconds=draw(st.integers(0, 5000))),
        empty_since=None if empty_for is None or players else NOW - timedelta(seconds=empty_for),
        allocated_at=NOW - timedelta(seconds=draw(st.integers(0, 1000)))
        if state is S.ALLOCATED
        else None,
    )


@settings(max_examples=400, deadline=None)
@given(policies(), st.lists(servers(), max_size=20))
def test_plans_keep_the_rules(policy: ScalingPolicy, fleet: list[ServerView]) -> None:
    result = plan(policy, fleet, NOW)
    by_id = {s.id: s for s in fleet}
    drained = {server_id for server_id, _ in result.drain}
    for server_id in drained:
        server = by_id[server_id]
        assert server.players == 0, "a server with players on it is never drained"
        assert server.state in (S.READY, S.ALLOCATED)
    for server_id in result.cancel:
        assert by_id[server_id].state is S.SCHEDULED
    idle_allocated = {i for i, reason in result.drain if reason.startswith("allocated")}
    scaled_down = drained - idle_allocated
    counted = [s for s in fleet if s.state in COUNTED and s.id not in idle_allocated]
    after = len(counted) + result.start - len(result.cancel) - len(scaled_down)
    in_use = sum(1 for s in counted if s.state is S.ALLOCATED or (s.state is S.READY and s.players))
    wanted = target(policy, in_use)
    if result.start:
        assert not result.cancel
        assert not scaled_down
        assert after == wanted <= policy.max_servers, "start exactly up to the target"
    if result.cancel or scaled_down:
        assert after >= wanted, "never shrink below the target"


def _ready(n: int, *, empty_for: float = 0.0, players: int = 0) -> list[ServerView]:
    since = None if players else NOW - timedelta(seconds=empty_for)
    return [ServerView(uuid.uuid4(), S.READY, players, NOW, since) for _ in range(n)]


def test_the_buffer_is_kept_above_what_is_in_use() -> None:
    policy = ScalingPolicy(buffer=2, max_servers=10)
    assert plan(policy, [], NOW).start == 2
    busy = _ready(3, players=1)
    assert plan(policy, busy, NOW).start == 2
    assert plan(policy, [*busy, *_ready(2)], NOW).start == 0


def test_max_servers_caps_the_buffer_and_min_ready_floors_it() -> None:
    assert plan(ScalingPolicy(buffer=5, max_servers=3), [], NOW).start == 3
    assert plan(ScalingPolicy(buffer=0, min_ready=2, max_servers=3), [], NOW).start == 2


def test_surplus_empty_servers_drain_only_after_the_delay() -> None:
    policy = ScalingPolicy(buffer=1, max_servers=10, scale_down_delay=60)
    fresh = _ready(3, empty_for=10)
    assert plan(policy, fresh, NOW).drain == []
    old = _ready(3, empty_for=61)
    assert len(plan(policy, old, NOW).drain) == 2


def test_a_fixed_size_drains_empty_servers_at_once_and_spares_busy_ones() -> None:
    policy = ScalingPolicy(replicas=0, scale_down_delay=600)
    busy = _ready(2, players=3)
    allocated = [ServerView(uuid.uuid4(), S.ALLOCATED, 0, NOW, NOW, NOW)]
    result = plan(policy, [*busy, *allocated, *_ready(2)], NOW)
    assert len(result.drain) == 2
    assert {b.id for b in busy}.isdisjoint(i for i, _ in result.drain)
    assert allocated[0].id not in {i for i, _ in result.drain}


def test_an_allocated_server_without_players_for_too_long_drains() -> None:
    policy = ScalingPolicy(buffer=0, allocated_idle_timeout=60)
    stale = ServerView(
        uuid.uuid4(), S.ALLOCATED, 0, NOW, NOW - timedelta(seconds=90), NOW - timedelta(seconds=61)
    )
    result = plan(policy, [stale], NOW)
    assert [i for i, _ in result.drain] == [stale.id]
