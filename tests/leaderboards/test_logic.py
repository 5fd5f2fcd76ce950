"""Periods, the rank index and the change feed's encoding, without a database."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest

from homeport.leaderboards import feed
from homeport.leaderboards.feed import Change
from homeport.leaderboards.periods import Reset, Schedule, parse_key
from homeport.leaderboards.ranks import BUCKET, SCORE_LIMIT, RankIndex, standing_key


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("reset", "cron", "moment", "key", "ends"),
    [
        (Reset.DAILY, None, "2030-03-10T23:59:59", "2030-03-10T00:00:00Z", "2030-03-11T00:00"),
        (Reset.WEEKLY, None, "2030-03-10T12:00", "2030-03-04T00:00:00Z", "2030-03-11T00:00"),
        (Reset.WEEKLY, None, "2030-03-11T00:00", "2030-03-11T00:00:00Z", "2030-03-18T00:00"),
        (Reset.MONTHLY, None, "2030-12-31T23:00", "2030-12-01T00:00:00Z", "2031-01-01T00:00"),
        (Reset.CRON, "0 6 * * 6", "2030-03-10T12:00", "2030-03-09T06:00:00Z", "2030-03-16T06:00"),
    ],
)
def test_periods_of_each_schedule(
    reset: Reset, cron: str | None, moment: str, key: str, ends: str
) -> None:
    schedule = Schedule(reset, cron)
    period = schedule.period_at(at(moment))
    assert (period.key, period.ends_at) == (key, at(ends))
    assert parse_key(key) == period.starts_at
    assert schedule.period_named(key) == period


def test_a_never_resetting_schedule_has_only_all() -> None:
    schedule = Schedule(Reset.NEVER, None)
    assert schedule.period_at(at("2030-01-01T00:00")).key == "all"
    with pytest.raises(ValueError, match="only the period"):
        schedule.period_named("2030-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="never resets"):
        Schedule(Reset.DAILY, None).period_named("all")


def test_the_current_period_moves_with_the_clock() -> None:
    schedule = Schedule(Reset.DAILY, None)
    assert schedule.period_at(at("2030-01-01T10:00")).key == "2030-01-01T00:00:00Z"
    assert schedule.period_at(at("2030-01-02T00:00")).key == "2030-01-02T00:00:00Z"
    assert schedule.period_at(at("2029-12-31T00:00")).key == "2029-12-31T00:00:00Z"


def test_standing_keys_order_like_the_database() -> None:
    rng = random.Random(7)
    rows = [
        (
            rng.choice([-SCORE_LIMIT, -5, 0, 5, SCORE_LIMIT]),
            rng.randint(-3, 3),
            rng.randint(0, 2**62),
            uuid.UUID(int=rng.getrandbits(128)),
        )
        for _ in range(2_000)
    ]
    by_tuple = sorted(rows, key=lambda r: (r[0], r[1], r[2], r[3].int))
    by_key = sorted(rows, key=lambda r: standing_key(r[0], r[1], r[2], r[3].int))
    assert by_tuple == by_key


def test_the_rank_index_counts_what_is_ahead_through_changes() -> None:
    rng = random.Random(11)
    players = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(5 * BUCKET)]
    current: dict[uuid.UUID, tuple[int, int]] = {}
    for p in players[: 3 * BUCKET]:
        current[p] = (standing_key(rng.randint(-100, 100), 0, 0, p.int), 1)
    index = RankIndex(sorted((k, p.int, v) for p, (k, v) in current.items()))
    for _ in range(6 * BUCKET):
        p = rng.choice(players)
        version = current.get(p, (0, 0))[1] + 1
        key = standing_key(rng.randint(-100, 100), rng.randint(0, 2), rng.randint(0, 9), p.int)
        current[p] = (key, version)
        index.apply(p.int, key, version)
        index.apply(p.int, standing_key(999, 0, 0, p.int), version - 1)  # stale: ignored
    keys = sorted(k for k, _ in current.values())
    assert len(index) == len(current)
    for p in rng.sample(sorted(current, key=lambda x: x.int), 200):
        assert index.rank(p, current[p][0]) == keys.index(current[p][0]) + 1
    # A player's fresher record than the index knows still ranks against the others only.
    p = next(iter(current))
    best = standing_key(-1000, 0, 0, p.int)
    assert index.rank(p, best) == 1
    assert index.version_of(p) == current[p][1]


def test_feed_payloads_fit_notify_and_round_trip() -> None:
    changes = [
        Change("kills", "2030-01-01T00:00:00Z", standing_key(-n, 0, n, n), n) for n in range(500)
    ]
    changes.append(Change("old", "", None, 0))
    payloads = feed.encode(changes)
    assert max(len(p.encode()) for p in payloads) <= feed.MAX_PAYLOAD
    decoded = [c for p in payloads for c in feed.decode(p)]
    assert sorted(decoded, key=repr) == sorted(changes, key=repr)
