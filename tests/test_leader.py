"""One process at a time runs a leader-only loop, and another takes over when it goes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from homeport.leader import LeaderLoop, Leadership, lock_key
from homeport.settings import Settings

CHECK = 0.05


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(leader_check_interval=CHECK)


@pytest.fixture
def name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def leaderships(settings: Settings, name: str) -> AsyncIterator[Callable[[], Leadership]]:
    made: list[Leadership] = []

    def make() -> Leadership:
        made.append(Leadership(settings, name))
        return made[-1]

    yield make
    for leadership in made:
        await leadership.release()


async def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def kill_lock_holder(settings: Settings, name: str) -> None:
    """End the holder's session from outside, as when its process or host dies."""
    key = lock_key(name) & 0xFFFF_FFFF_FFFF_FFFF
    dsn = make_url(settings.database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        killed = await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1 AND granted",
            key >> 32,
            key & 0xFFFF_FFFF,
        )
    finally:
        await connection.close()
    assert killed == 1


def test_lock_keys_are_stable_signed_64_bit_numbers() -> None:
    # Replicas of different versions must agree on the key during a rolling upgrade.
    assert lock_key("registry-purge") == lock_key("registry-purge")
    assert lock_key("registry-purge") != lock_key("events-prune")
    assert all(-(2**63) <= lock_key(n) < 2**63 for n in ("a", "registry-purge", "x" * 60))
    assert lock_key("registry-purge") == 6280163297038043949


def test_a_name_must_be_safe_in_a_file_name(settings: Settings) -> None:
    for bad in ("", "../escape", "a/b", ".hidden", "x" * 64):
        with pytest.raises(ValueError, match="leadership name"):
            Leadership(settings, bad)


async def test_one_holder_at_a_time(leaderships: Callable[[], Leadership]) -> None:
    first, second = leaderships(), leaderships()
    assert await first.try_acquire()
    assert not await second.try_acquire()
    assert await first.try_acquire(), "acquiring what one holds succeeds"
    assert (first.held, second.held) == (True, False)
    assert await first.still_held()
    assert not await second.still_held()

    await first.release()
    assert not first.held
    assert await second.try_acquire()
    assert not await first.try_acquire()


async def test_names_are_independent(settings: Settings, name: str) -> None:
    one, other = Leadership(settings, name), Leadership(settings, f"{name}-other")
    try:
        assert await one.try_acquire()
        assert await other.try_acquire()
    finally:
        await one.release()
        await other.release()


async def test_the_lock_moves_when_its_holders_connection_dies(
    settings: Settings, name: str, leaderships: Callable[[], Leadership]
) -> None:
    if settings.is_sqlite:
        pytest.skip("on SQLite the kernel releases the lock with the process")
    holder, waiting = leaderships(), leaderships()
    assert await holder.try_acquire()
    assert not await waiting.try_acquire()
    await kill_lock_holder(settings, name)
    assert not await holder.still_held()
    assert not holder.held
    for _ in range(100):
        if await waiting.try_acquire():
            break
        await asyncio.sleep(0.02)
    assert waiting.held


async def test_a_removed_lock_file_ends_the_leadership(
    settings: Settings, leaderships: Callable[[], Leadership]
) -> None:
    if not settings.is_sqlite:
        pytest.skip("only SQLite leadership is a file")
    holder, other = leaderships(), leaderships()
    assert await holder.try_acquire()
    holder.lock_path.unlink()
    # The next process would lock a new file of that name: the old holder must step down.
    assert not await holder.still_held()
    assert not holder.held
    assert await other.try_acquire()


class Counter:
    def __init__(self) -> None:
        self.runs = 0

    async def work(self) -> None:
        self.runs += 1


def make_loop(settings: Settings, name: str, counter: Counter) -> LeaderLoop:
    return LeaderLoop(
        Leadership(settings, name),
        interval=0.02,
        work=counter.work,
        check_interval=CHECK,
        name=name,
    )


async def test_the_work_runs_in_one_loop_and_moves_when_it_stops(
    settings: Settings, name: str
) -> None:
    counters = [Counter(), Counter()]
    loops = [make_loop(settings, name, counter) for counter in counters]
    for loop in loops:
        loop.start()
    try:
        await wait_until(lambda: sum(c.runs for c in counters) >= 5)
        leader = next(i for i, loop in enumerate(loops) if loop.is_leader)
        follower = 1 - leader
        assert counters[follower].runs == 0
        assert not loops[follower].is_leader

        await loops[leader].stop()
        assert not loops[leader].is_leader
        stopped_at = counters[leader].runs
        await wait_until(lambda: counters[follower].runs >= 3, seconds=10 * CHECK + 2)
        assert loops[follower].is_leader
        assert counters[leader].runs == stopped_at
    finally:
        for loop in loops:
            await loop.stop()


async def test_a_leader_that_lost_its_connection_stops_working(
    settings: Settings, name: str
) -> None:
    if settings.is_sqlite:
        pytest.skip("on SQLite the kernel releases the lock with the process")
    counters = [Counter(), Counter()]
    loops = [make_loop(settings, name, counter) for counter in counters]
    for loop in loops:
        loop.start()
    try:
        await wait_until(lambda: any(loop.is_leader for loop in loops))
        leader = next(i for i, loop in enumerate(loops) if loop.is_leader)
        await kill_lock_holder(settings, name)
        await wait_until(lambda: not loops[leader].is_leader or loops[1 - leader].is_leader)
        await wait_until(lambda: sum(loop.is_leader for loop in loops) == 1)
        runs = [c.runs for c in counters]
        await asyncio.sleep(5 * CHECK)
        working = [i for i in (0, 1) if counters[i].runs > runs[i]]
        assert working == [next(i for i, loop in enumerate(loops) if loop.is_leader)]
    finally:
        for loop in loops:
            await loop.stop()


async def test_failing_work_is_logged_and_tried_again(
    settings: Settings, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise RuntimeError(f"failure {calls}")

    loop = LeaderLoop(
        Leadership(settings, name), interval=0.01, work=work, check_interval=CHECK, name=name
    )
    loop.start()
    try:
        await wait_until(lambda: calls >= 4)
    finally:
        await loop.stop()
    failures = [r for r in caplog.records if r.name == "homeport.leader" and r.exc_info]
    assert [r.levelno for r in failures[:2]] == [logging.ERROR, logging.ERROR]
    assert "failure 1" in caplog.text
    assert not loop.is_leader


async def test_stop_is_safe_before_start_and_twice(settings: Settings, name: str) -> None:
    loop = make_loop(settings, name, Counter())
    await loop.stop()
    loop.start()
    await wait_until(lambda: loop.is_leader)
    await asyncio.wait_for(loop.stop(), 5)
    await loop.stop()
    successor = Leadership(settings, name)
    assert await successor.try_acquire()
    await successor.release()
