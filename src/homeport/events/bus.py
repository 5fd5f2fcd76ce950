"""Domain events: written in the transaction that caused them, delivered to every process.

`emit` adds the event to the caller's transaction, so it exists only if its cause committed.
Delivery: on PostgreSQL `emit` also sends `NOTIFY` in that transaction (sent on commit, never
on rollback, in commit order) and each bus listens on a connection of its own; on SQLite, where
there is one writer at a time and ids therefore grow in commit order, each bus reads the rows
past the last id it saw. Subscribers get events from every process on the database, their own
included. NOTIFY is fire-and-forget, so after its connection comes back a bus reads the events
of the gap from the table, skipping those it already delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
from sqlalchemy import ColumnElement, delete, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from homeport.clock import Clock
from homeport.events.models import EventRow
from homeport.settings import Settings

CHANNEL = "homeport_events"
MAX_NOTIFY_BYTES = 7900  # PostgreSQL refuses payloads of 8000 bytes or more
POLL_BATCH = 1000
FETCH_BATCH = 500
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
CONNECT_TIMEOUT = 5.0
PING_EVERY = 30.0  # a connection that silently died sends no termination either
CATCH_UP_OVERLAP = timedelta(seconds=30)  # for late commits and clock differences
CATCH_UP_MAX = 10_000
REMEMBERED_IDS = 10_000
log = logging.getLogger("homeport.events")
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', :payload)")


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    topic: str
    kind: str
    subject: str
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, row: EventRow) -> Event:
        return cls(row.id, row.topic, row.kind, row.subject, row.data, row.created_at)


def _parse_notification(payload: str) -> tuple[int, Event | None]:
    """The event's id, and the event unless it was too big to send or has unknown fields (sent
    by a newer version during a rolling upgrade): those are read from the table instead."""
    fields = orjson.loads(payload)
    with contextlib.suppress(KeyError, TypeError, ValueError):
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
        return int(fields["id"]), Event(**fields)
    return int(fields["id"]), None


def _notification(event: Event) -> str:
    """The event, or only its id when PostgreSQL would refuse the payload's size."""
    payload = orjson.dumps(event)
    return (orjson.dumps({"id": event.id}) if len(payload) > MAX_NOTIFY_BYTES else payload).decode()


def record(
    session: Session, clock: Clock, *, topic: str, kind: str, subject: str, data: dict[str, Any]
) -> None:
    """`emit` for code that runs its transaction synchronously (in a worker thread)."""
    row = EventRow(topic=topic, kind=kind, subject=subject, data=data, created_at=clock.now())
    session.add(row)
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY, {"payload": _notification(Event.of(row))})


async def record_asyncpg(
    connection: asyncpg.Connection,
    clock: Clock,
    *,
    topic: str,
    kind: str,
    subject: str,
    data: dict[str, Any],
) -> None:
    """`record` for a hot path that holds a raw asyncpg connection in a transaction."""
    created = clock.now()
    event_id = await connection.fetchval(
        "INSERT INTO events (topic, kind, subject, data, created_at)"
        " VALUES ($1, $2, $3, $4::json, $5) RETURNING id",
        *(topic, kind, subject, orjson.dumps(data).decode(), created),
    )
    event = Event(event_id, topic, kind, subject, data, created)
    await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, _notification(event))


async def emit(
    session: AsyncSession,
    clock: Clock,
    *,
    topic: str,
    kind: str,
    subject: str,
    data: dict[str, Any],
) -> None:
    """Record an event in the caller's transaction; it is delivered if and when that commits."""
    await session.run_sync(record, clock, topic=topic, kind=kind, subject=subject, data=data)


async def prune(session: AsyncSession, clock: Clock, *, older_than_seconds: int) -> int:
    """Delete events older than the retention; the count.

    The newest event is always kept: SQLite hands out max(id) + 1, so an emptied table would
    reuse ids that polling buses believe they have already seen.
    """
    cutoff = clock.now() - timedelta(seconds=older_than_seconds)
    newest = select(func.max(EventRow.id)).scalar_subquery()
    result = await session.execute(
        delete(EventRow).where(EventRow.created_at < cutoff, EventRow.id < newest)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class Subscription:
    """Events of some topics (all when none), oldest first, in a bounded queue: a subscriber
    that stopped reading costs a fixed amount of memory and never slows the others. When the
    queue is full the oldest event goes, and `dropped` counts it."""

    def __init__(self, bus: EventBus, topics: frozenset[str], max_queued: int) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self._bus = bus
        self.topics = topics
        self._queue: deque[Event] = deque(maxlen=max_queued)
        self._ready = asyncio.Event()
        self._closed = False
        self.after_id = 0
        self.dropped = 0

    def offer(self, event: Event) -> None:
        if event.id <= self.after_id or (self.topics and event.topic not in self.topics):
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    def end(self) -> None:
        self._closed = True
        self._ready.set()

    async def get(self, within: float | None = None) -> Event | None:
        """The next event; None when `within` seconds pass first or the bus has closed."""
        try:
            async with asyncio.timeout(within):
                while not self._queue and not self._closed:
                    self._ready.clear()
                    await self._ready.wait()
        except TimeoutError:
            return None
        return self._queue.popleft() if self._queue else None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def __aenter__(self) -> Subscription:
        await self._bus.attach(self)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._bus.detach(self)


class EventBus:
    """This process's end of the event stream; it reads the database only while subscribed to."""

    def __init__(
        self, settings: Settings, clock: Clock, read_sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._read = read_sessions
        self._subscribers: set[Subscription] = set()
        self._runner: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        # PostgreSQL only: notifications wait in `_inbox` while an earlier one is being read
        # from the table, so that delivery keeps commit order.
        self._inbox: deque[tuple[int, Event | None]] = deque()
        self._wake = asyncio.Event()
        self._delivering = asyncio.Lock()
        self._delivered: dict[int, None] = {}  # lately, oldest first: for reading back a gap
        self._alive_at = clock.now()

    def subscribe(self, *topics: str, max_queued: int = 10_000) -> Subscription:
        return Subscription(self, frozenset(topics), max_queued)

    async def start(self) -> None:
        """Nothing to open yet: the first subscription does, so an unobserved bus costs nothing."""

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            for subscription in self._subscribers:
                subscription.end()
            self._subscribers.clear()
            await self._stop_runner()

    async def attach(self, subscription: Subscription) -> None:
        async with self._lock:
            if self._closed:
                raise RuntimeError("the event bus is closed")
            if self._settings.is_sqlite:
                async with self._read() as session:
                    newest = await session.scalar(select(func.max(EventRow.id)))
                subscription.after_id = newest or 0
            self._subscribers.add(subscription)
            if self._runner is not None:
                return
            try:
                await self._start_runner(subscription.after_id)
            except BaseException:
                self._subscribers.discard(subscription)
                await self._stop_runner()
                raise

    async def detach(self, subscription: Subscription) -> None:
        async with self._lock:
            self._subscribers.discard(subscription)
            if not self._subscribers:
                await self._stop_runner()

    async def _start_runner(self, after_id: int) -> None:
        if self._settings.is_sqlite:
            self._runner = asyncio.create_task(self._poll(after_id), name="homeport-events")
            return
        # The first subscriber must not miss what commits once `subscribe` returns: wait for
        # LISTEN (or for the first failure to connect, after which the gap is read back).
        ready = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._listen(ready), name="homeport-events")
        await asyncio.wait({ready, self._runner}, return_when=asyncio.FIRST_COMPLETED)

    async def _stop_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    async def _read_events(self, *where: ColumnElement[bool], limit: int) -> list[Event]:
        async with self._read() as session:
            query = select(EventRow).where(*where).order_by(EventRow.id).limit(limit)
            return [Event.of(row) for row in await session.scalars(query)]

    def _publish(self, event: Event) -> None:
        for subscription in self._subscribers:
            subscription.offer(event)

    async def _poll(self, last_id: int) -> None:
        """SQLite: read the rows past the last one seen."""
        failing = False
        while True:
            try:
                events = await self._read_events(EventRow.id > last_id, limit=POLL_BATCH)
                failing = False
            except Exception:
                if not failing:
                    log.warning("reading events failed; retrying", exc_info=True)
                failing = True
                events = []
            for event in events:
                last_id = event.id
                self._publish(event)
            if len(events) < POLL_BATCH:
                await asyncio.sleep(self._settings.events_poll_interval)

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        """PostgreSQL: LISTEN on a connection of the bus's own, which comes back when lost."""
        dsn = make_url(self._settings.database_url).set(drivername="postgresql")
        self._alive_at = self._clock.now()
        drain = asyncio.create_task(self._drain(), name="homeport-events-drain")
        failures = 0
        try:
            while True:
                connection: asyncpg.Connection | None = None
                try:
                    connection = await asyncpg.connect(
                        dsn.render_as_string(hide_password=False),
                        timeout=CONNECT_TIMEOUT,
                        server_settings={"application_name": "homeport-events"},
                    )
                    lost = asyncio.Event()
                    connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                    async with self._delivering:
                        await connection.add_listener(CHANNEL, self._on_notify)
                        if failures:
                            await self._catch_up(self._alive_at - CATCH_UP_OVERLAP)
                            log.warning("events connection back after %d attempts", failures)
                    failures = 0
                    self._alive_at = self._clock.now()
                    if not ready.done():
                        ready.set_result(None)
                    while not lost.is_set():
                        try:
                            await asyncio.wait_for(lost.wait(), PING_EVERY)
                        except TimeoutError:
                            await connection.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT)
                            self._alive_at = self._clock.now()
                    log.warning("lost the events connection; reconnecting")
                except Exception:
                    if failures == 0:
                        log.warning("events connection failed; retrying", exc_info=True)
                    if not ready.done():
                        ready.set_result(None)
                finally:
                    if connection is not None:
                        # Nothing to finish, and a polite close can hang on a dead server.
                        connection.terminate()
                failures += 1
                await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS)) - 1])
        finally:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
            self._inbox.clear()

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self._alive_at = self._clock.now()
        try:
            item = _parse_notification(payload)
        except Exception:
            log.warning("ignoring a malformed event notification")
            return
        if item[1] is not None and not self._inbox and not self._delivering.locked():
            self._publish_once(item[1])
            return
        self._inbox.append(item)
        self._wake.set()

    def _publish_once(self, event: Event) -> None:
        if event.id not in self._delivered:
            self._delivered[event.id] = None
            if len(self._delivered) > REMEMBERED_IDS:
                del self._delivered[next(iter(self._delivered))]
            self._publish(event)

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._inbox:
                async with self._delivering:
                    if (event := self._inbox[0][1]) is not None:
                        self._inbox.popleft()
                        self._publish_once(event)
                    else:
                        await self._read_bare_ids()

    async def _read_bare_ids(self) -> None:
        """Deliver the inbox's leading run of events that were too big to send, in one read."""
        ids: list[int] = []
        while self._inbox and self._inbox[0][1] is None and len(ids) < FETCH_BATCH:
            ids.append(self._inbox.popleft()[0])
        try:
            found = {e.id: e for e in await self._read_events(EventRow.id.in_(ids), limit=len(ids))}
        except Exception:
            log.warning("could not read %d large events; they are lost", len(ids), exc_info=True)
            return
        for event_id in filter(found.__contains__, ids):
            self._publish_once(found[event_id])

    async def _catch_up(self, since: datetime) -> None:
        """Deliver the events committed while the bus was not listening."""
        # Ids under those remembered may have been delivered and forgotten since.
        floor = min(self._delivered) if len(self._delivered) == REMEMBERED_IDS else 0
        events = await self._read_events(
            EventRow.created_at >= since, EventRow.id >= floor, limit=CATCH_UP_MAX
        )
        if len(events) == CATCH_UP_MAX:
            log.warning("more events than can be read back after a reconnect; some are lost")
        for event in events:
            self._publish_once(event)
