"""Domain events: written in the transaction that caused them, delivered to every process.

`emit` adds the event to the caller's transaction, so it exists only if its cause committed.
Delivery: on PostgreSQL `emit` also sends `NOTIFY` in that transaction (sent on commit, never
on rollback) and each bus listens on its own connection; on SQLite, where there is one writer
at a time and ids therefore grow in commit order, each bus reads the rows past the last id it
saw. Subscribers get events from every process on the database, their own included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import asyncpg
import orjson
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from homeport.clock import Clock
from homeport.events.models import EventRow
from homeport.settings import Settings

CHANNEL = "homeport_events"
MAX_NOTIFY_BYTES = 7900
POLL_BATCH = 1000
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
log = logging.getLogger("homeport.events")


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

    def payload(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "topic": self.topic,
                "kind": self.kind,
                "subject": self.subject,
                "data": self.data,
                "created_at": self.created_at.isoformat(),
            }
        )


def record(
    session: Session,
    clock: Clock,
    *,
    topic: str,
    kind: str,
    subject: str,
    data: dict[str, Any],
) -> None:
    """Record an event in the caller's (synchronous) transaction; the caller commits."""
    row = EventRow(topic=topic, kind=kind, subject=subject, data=data, created_at=clock.now())
    session.add(row)
    session.flush()
    if session.get_bind().dialect.name != "postgresql":
        return
    payload = Event.of(row).payload()
    if len(payload) > MAX_NOTIFY_BYTES:
        # NOTIFY payloads are limited to 8000 bytes: listeners read the row instead.
        payload = orjson.dumps({"id": row.id})
    session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": CHANNEL, "payload": payload.decode()},
    )


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
        topic,
        kind,
        subject,
        orjson.dumps(data).decode(),
        created,
    )
    payload = Event(event_id, topic, kind, subject, data, created).payload()
    if len(payload) > MAX_NOTIFY_BYTES:
        payload = orjson.dumps({"id": event_id})
    await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload.decode())


async def emit(
    session: AsyncSession,
    clock: Clock,
    *,
    topic: str,
    kind: str,
    subject: str,
    data: dict[str, Any],
) -> None:
    """Record an event in the caller's transaction (the caller commits)."""
    await session.run_sync(record, clock, topic=topic, kind=kind, subject=subject, data=data)


async def prune(session: AsyncSession, clock: Clock, *, older_than_seconds: int) -> int:
    cutoff = clock.now() - timedelta(seconds=older_than_seconds)
    result = await session.execute(delete(EventRow).where(EventRow.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class Subscription:
    """Events of some topics (all when none), oldest first; a full queue drops its oldest."""

    def __init__(self, bus: EventBus, topics: frozenset[str], max_queued: int) -> None:
        self._bus = bus
        self.topics = topics
        self._queue: deque[Event] = deque(maxlen=max_queued)
        self._ready = asyncio.Event()
        self.dropped = 0

    def offer(self, event: Event) -> None:
        if self.topics and event.topic not in self.topics:
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    async def get(self, within: float | None = None) -> Event | None:
        """The next event, or None when `within` seconds pass first."""
        while not self._queue:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), within)
            except TimeoutError:
                return None
        return self._queue.popleft()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        event = await self.get()
        assert event is not None
        return event

    async def __aenter__(self) -> Subscription:
        await self._bus.attach(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bus.detach(self)


class EventBus:
    def __init__(
        self, settings: Settings, clock: Clock, read_sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._read = read_sessions
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._last_id = 0
        self._fetches: set[asyncio.Task[None]] = set()

    def subscribe(self, *topics: str, max_queued: int = 10_000) -> Subscription:
        return Subscription(self, frozenset(topics), max_queued)

    async def start(self) -> None:
        """Nothing to do until someone subscribes; kept for the app's lifespan symmetry."""

    async def close(self) -> None:
        self._subscribers.clear()
        await self._stop_task()

    async def attach(self, subscription: Subscription) -> None:
        if not self._subscribers:
            self._last_id = await self._max_id()
            ready = asyncio.get_running_loop().create_future()
            runner = self._listen if not self._settings.is_sqlite else self._poll
            self._task = asyncio.create_task(runner(ready))
            await ready
        self._subscribers.add(subscription)

    def detach(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        if not self._subscribers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _max_id(self) -> int:
        async with self._read() as session:
            return int(await session.scalar(select(func.max(EventRow.id))) or 0)

    def _deliver(self, event: Event) -> None:
        for subscription in list(self._subscribers):
            subscription.offer(event)

    async def _read_after(self, last_id: int) -> list[Event]:
        async with self._read() as session:
            rows = await session.scalars(
                select(EventRow)
                .where(EventRow.id > last_id)
                .order_by(EventRow.id)
                .limit(POLL_BATCH)
            )
            return [Event.of(row) for row in rows]

    async def _poll(self, ready: asyncio.Future[None]) -> None:
        ready.set_result(None)
        while True:
            try:
                events = await self._read_after(self._last_id)
            except Exception:
                log.warning("reading events failed; retrying", exc_info=True)
                events = []
            for event in events:
                self._last_id = event.id
                self._deliver(event)
            if len(events) < POLL_BATCH:
                await asyncio.sleep(self._settings.events_poll_interval)

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        dsn = self._settings.database_url.replace("+asyncpg", "", 1)
        attempt = 0
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(dsn)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._on_notify)
                attempt = 0
                if not ready.done():
                    ready.set_result(None)
                await lost.wait()
                log.warning("lost the events connection; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("events connection failed; retrying", exc_info=True)
                if not ready.done():
                    ready.set_result(None)  # subscribers still get events once it connects
            finally:
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), 2.0)
            await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            attempt += 1

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("unreadable event notification dropped")
            return
        if "topic" not in data:
            fetch = asyncio.get_running_loop().create_task(self._fetch(int(data["id"])))
            self._fetches.add(fetch)
            fetch.add_done_callback(self._fetches.discard)
            return
        self._deliver(
            Event(
                id=int(data["id"]),
                topic=data["topic"],
                kind=data["kind"],
                subject=data["subject"],
                data=data["data"],
                created_at=datetime.fromisoformat(data["created_at"]),
            )
        )

    async def _fetch(self, event_id: int) -> None:
        async with self._read() as session:
            row = await session.get(EventRow, event_id)
            if row is not None:
                self._deliver(Event.of(row))
