"""Events reach subscribers in every process on the database, once, in commit order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from homeport.clock import FakeClock
from homeport.db.engine import create_engine, create_sessionmaker
from homeport.events.bus import (
    CHANNEL,
    MAX_NOTIFY_BYTES,
    Event,
    EventBus,
    Subscription,
    emit,
    prune,
)
from homeport.events.models import EventRow
from homeport.settings import Settings


@dataclass
class Process:
    """What one process of Homeport has: its own engine, sessions and bus."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: EventBus


@pytest.fixture
async def spawn(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> AsyncIterator[Callable[[], Process]]:
    settings = make_settings(events_poll_interval=0.02)
    made: list[Process] = []

    def make() -> Process:
        engine = create_engine(settings)
        read = create_sessionmaker(engine, read_only=True)
        process = Process(
            settings, engine, create_sessionmaker(engine), EventBus(settings, clock, read)
        )
        made.append(process)
        return process

    yield make
    for process in made:
        await process.bus.close()
        await process.engine.dispose()


async def publish(
    process: Process,
    clock: FakeClock,
    *events: tuple[str, str],
    data: dict[str, Any] | None = None,
    commit: bool = True,
) -> None:
    """Emit (topic, kind) events in one transaction."""
    async with process.sessions() as session:
        for topic, kind in events:
            await emit(session, clock, topic=topic, kind=kind, subject="s-1", data=data or {})
        await (session.commit() if commit else session.rollback())


async def receive(subscription: Subscription, count: int) -> list[Event]:
    events: list[Event] = []
    for _ in range(count):
        event = await subscription.get(within=5.0)
        assert event is not None, f"only {len(events)} of {count} events arrived"
        events.append(event)
    return events


async def wait_until(condition: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + 5
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def nothing_more(subscription: Subscription) -> None:
    assert await subscription.get(within=0.15) is None


async def test_a_committed_event_reaches_every_process(
    spawn: Callable[[], Process], clock: FakeClock
) -> None:
    writer, other = spawn(), spawn()
    async with other.bus.subscribe("registry") as theirs, writer.bus.subscribe() as own:
        await publish(writer, clock, ("registry", "server.registered"), data={"port": 7})
        (event,) = await receive(theirs, 1)
        assert (event.topic, event.kind, event.subject) == ("registry", "server.registered", "s-1")
        assert event.data == {"port": 7}
        assert event.created_at == clock.now()
        assert await receive(own, 1) == [event]


async def test_a_new_subscriber_gets_no_history(
    spawn: Callable[[], Process], clock: FakeClock
) -> None:
    writer, other = spawn(), spawn()
    await publish(writer, clock, ("registry", "before"))
    async with other.bus.subscribe() as subscription:
        await publish(writer, clock, ("registry", "after"))
        assert [e.kind for e in await receive(subscription, 1)] == ["after"]
        await nothing_more(subscription)


async def test_a_rolled_back_event_is_never_delivered(
    spawn: Callable[[], Process], clock: FakeClock
) -> None:
    writer, other = spawn(), spawn()
    async with other.bus.subscribe() as subscription:
        await publish(writer, clock, ("registry", "undone"), commit=False)
        await publish(writer, clock, ("registry", "kept"))
        assert [e.kind for e in await receive(subscription, 1)] == ["kept"]
        await nothing_more(subscription)


async def test_subscribers_get_only_their_topics(
    spawn: Callable[[], Process], clock: FakeClock
) -> None:
    writer, other = spawn(), spawn()
    bus = other.bus
    async with (
        bus.subscribe("a") as only_a,
        bus.subscribe("a", "b") as a_b,
        bus.subscribe() as every,
    ):
        await publish(writer, clock, ("a", "1"), ("b", "2"), ("c", "3"))
        assert [e.kind for e in await receive(every, 3)] == ["1", "2", "3"]
        assert [e.kind for e in await receive(a_b, 2)] == ["1", "2"]
        assert [e.kind for e in await receive(only_a, 1)] == ["1"]
        for subscription in (only_a, a_b, every):
            await nothing_more(subscription)


async def test_events_arrive_in_commit_order(
    spawn: Callable[[], Process], clock: FakeClock
) -> None:
    writer, other = spawn(), spawn()
    async with other.bus.subscribe() as subscription:
        await publish(writer, clock, *[("registry", f"first-{n}") for n in range(5)])
        await publish(writer, clock, *[("registry", f"second-{n}") for n in range(3)])
        events = await receive(subscription, 8)
        assert [e.kind for e in events] == [f"first-{n}" for n in range(5)] + [
            f"second-{n}" for n in range(3)
        ]
        assert [e.id for e in events] == sorted(e.id for e in events)


async def test_an_event_too_big_to_notify_is_read_from_the_table_in_order(
    spawn: Callable[[], Process], clock: FakeClock
) -> None:
    writer, other = spawn(), spawn()
    big = {"blob": "é" * 5000, "list": list(range(100))}
    payloads: list[str] = []
    probe = None
    if not writer.settings.is_sqlite:
        # Listen beside the buses, to see what PostgreSQL was actually sent.
        dsn = make_url(writer.settings.database_url).set(drivername="postgresql")
        probe = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        await probe.add_listener(CHANNEL, lambda *args: payloads.append(args[-1]))
    try:
        async with other.bus.subscribe() as subscription:
            async with writer.sessions() as session:
                await emit(session, clock, topic="t", kind="small-1", subject="s", data={})
                await emit(session, clock, topic="t", kind="big", subject="s", data=big)
                await emit(session, clock, topic="t", kind="small-2", subject="s", data={})
                await session.commit()
            events = await receive(subscription, 3)
            assert [e.kind for e in events] == ["small-1", "big", "small-2"]
            assert events[1].data == big
        if probe is not None:
            assert len(payloads) == 3
            assert orjson.loads(payloads[1]) == {"id": events[1].id}
            assert all(len(p.encode()) < MAX_NOTIFY_BYTES for p in payloads)
            assert orjson.loads(payloads[2])["kind"] == "small-2"
    finally:
        if probe is not None:
            await probe.close()


async def test_a_full_queue_drops_its_oldest_events_and_counts_them(
    spawn: Callable[[], Process], clock: FakeClock
) -> None:
    writer, other = spawn(), spawn()
    async with other.bus.subscribe(max_queued=3) as slow, other.bus.subscribe() as fast:
        await publish(writer, clock, *[("registry", str(n)) for n in range(5)])
        assert [e.kind for e in await receive(fast, 5)] == ["0", "1", "2", "3", "4"]
        assert slow.dropped == 2
        assert [e.kind for e in await receive(slow, 3)] == ["2", "3", "4"]
        await nothing_more(slow)
        assert fast.dropped == 0


async def test_prune_deletes_only_old_events(
    spawn: Callable[[], Process], clock: FakeClock
) -> None:
    process = spawn()
    await publish(process, clock, ("registry", "old-1"), ("registry", "old-2"))
    clock.advance(100)
    await publish(process, clock, ("registry", "new-1"), ("registry", "new-2"))
    async with process.sessions() as session:
        assert await prune(session, clock, older_than_seconds=50) == 2
        await session.commit()
    async with process.sessions() as session:
        kinds = (await session.scalars(select(EventRow.kind).order_by(EventRow.id))).all()
    assert kinds == ["new-1", "new-2"]


async def test_delivery_goes_on_after_every_event_is_old(
    spawn: Callable[[], Process], clock: FakeClock
) -> None:
    # SQLite hands out max(id) + 1: pruning the newest row would make the next event reuse an
    # id that the subscribers have already seen.
    writer, other = spawn(), spawn()
    async with other.bus.subscribe() as subscription:
        await publish(writer, clock, ("registry", "1"), ("registry", "2"))
        await receive(subscription, 2)
        clock.advance(1000)
        async with writer.sessions() as session:
            assert await prune(session, clock, older_than_seconds=60) == 1
            await session.commit()
        await publish(writer, clock, ("registry", "3"))
        assert [e.kind for e in await receive(subscription, 1)] == ["3"]


async def test_closing_the_bus_ends_its_subscriptions(
    spawn: Callable[[], Process], clock: FakeClock
) -> None:
    process = spawn()
    seen: list[str] = []
    async with process.bus.subscribe() as subscription:

        async def read_all() -> None:
            async for event in subscription:
                seen.append(event.kind)

        reader = asyncio.create_task(read_all())
        await publish(process, clock, ("registry", "last"))
        await wait_until(lambda: seen == ["last"])
        await asyncio.wait_for(process.bus.close(), 5)
        await asyncio.wait_for(reader, 5)
    with pytest.raises(RuntimeError, match="closed"):
        async with process.bus.subscribe():
            pass


async def test_the_listener_comes_back_and_reads_the_gap(
    spawn: Callable[[], Process], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    writer, other = spawn(), spawn()
    if writer.settings.is_sqlite:
        pytest.skip("SQLite polls; there is no connection to lose")
    async with other.bus.subscribe() as subscription:
        async with writer.engine.connect() as conn:
            await conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'homeport-events' AND datname = current_database()"
            )
        await wait_until(lambda: "lost the events connection" in caplog.text)
        # Committed during the reconnect delay: only reading the table back delivers it.
        await publish(writer, clock, ("registry", "in-the-gap"))
        await publish(writer, clock, ("registry", "after"))
        assert [e.kind for e in await receive(subscription, 2)] == ["in-the-gap", "after"]
        await nothing_more(subscription)
    assert "events connection back" in caplog.text


async def test_notifications_it_cannot_parse_do_not_stop_delivery(
    spawn: Callable[[], Process], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    writer, other = spawn(), spawn()
    if writer.settings.is_sqlite:
        pytest.skip("SQLite has no notifications")
    notify = text("SELECT pg_notify(:channel, :payload)")
    async with other.bus.subscribe() as subscription:
        async with writer.sessions() as session:
            await session.execute(notify, {"channel": CHANNEL, "payload": "not json"})
            # As a newer version would send it during a rolling upgrade: a field more.
            row = EventRow(topic="t", kind="newer", subject="s", data={}, created_at=clock.now())
            session.add(row)
            await session.flush()
            newer = {
                "id": row.id,
                "topic": "t",
                "kind": "newer",
                "subject": "s",
                "data": {},
                "created_at": clock.now().isoformat(),
                "priority": 1,
            }
            await session.execute(
                notify, {"channel": CHANNEL, "payload": orjson.dumps(newer).decode()}
            )
            await session.commit()
        await publish(writer, clock, ("t", "next"))
        assert [e.kind for e in await receive(subscription, 2)] == ["newer", "next"]
    assert "malformed event notification" in caplog.text
