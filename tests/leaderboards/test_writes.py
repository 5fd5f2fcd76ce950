"""Grouped writes against what happens around them: another process inserting a record between
a group's read and its write, a board made again with other rules, a writer's connection lost,
and the first reads of a process arriving together."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url, select

from homeport.clock import FakeClock
from homeport.leaderboards import standings, writer
from homeport.leaderboards.lookups import POOL_SIZE
from homeport.leaderboards.models import LeaderboardPeriod
from homeport.leaderboards.periods import key_of
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer
from tests.leaderboards.helpers import (
    admin_key,
    board_key,
    create_board,
    make_players,
    read,
    submit,
    submitted,
)


def _postgres_only(settings: Settings) -> None:
    if settings.is_sqlite:
        pytest.skip("PostgreSQL's concurrency")


async def _admin_connection(settings: Settings) -> asyncpg.Connection:
    dsn = make_url(settings.database_url).set(drivername="postgresql")
    return await asyncpg.connect(dsn.render_as_string(hide_password=False))


class _Interloper:
    """The writer's connection, with `meanwhile` run (as another process would) right after
    the first read that names a record."""

    def __init__(self, real: Any, meanwhile: Callable[[], Awaitable[None]]) -> None:
        self._real = real
        self._meanwhile: Callable[[], Awaitable[None]] | None = meanwhile

    async def fetch(self, query: str, *args: Any) -> Any:
        rows = await self._real.fetch(query, *args)
        if self._meanwhile is not None and args[2]:
            meanwhile, self._meanwhile = self._meanwhile, None
            await meanwhile()
        return rows

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self._real.fetchrow(query, *args)


async def test_a_record_inserted_meanwhile_by_another_process_is_added_to_not_overwritten(
    client: httpx.AsyncClient,
    state: AppState,
    settings: Settings,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _postgres_only(settings)
    admin, key = await admin_key(state), await board_key(state)
    await create_board(client, admin, "xp", operator="increment")
    first, player = await make_players(state, 2)
    await submitted(client, key, "xp", first, 1)  # the writer now knows the board's rules

    inserted: list[bool] = []

    async def other_process_inserts() -> None:
        if inserted:  # once: the group's second attempt reads the row
            return
        inserted.append(True)
        other = await _admin_connection(settings)
        try:
            await other.execute(
                "INSERT INTO leaderboard_records (board_id, period, player_id, score, subscore,"
                " order_score, order_subscore, metadata, reached_us, updated_at, version)"
                " VALUES ('xp', 'all', $1, 10, 0, -10, 0, '{}', 1, $2, 1)",
                player,
                clock.now(),
            )
        finally:
            await other.close()

    original = writer.write_group_postgres

    async def interloped(connection: Any, *args: Any) -> Any:
        return await original(_Interloper(connection, other_process_inserts), *args)

    monkeypatch.setattr(writer, "write_group_postgres", interloped)
    answer = await submitted(client, key, "xp", player, 5)
    assert inserted
    assert (answer["score"], answer["changed"]) == (15, True)
    record = await read(client, key, f"/v1/leaderboards/xp/records/{player}")
    assert (record["score"], record["rank"]) == (15, 1)


async def test_a_board_made_again_with_other_rules_writes_in_its_own_periods(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    admin, key = await admin_key(state), await board_key(state)
    await create_board(client, admin, "season", reset="never")
    (player,) = await make_players(state, 1)
    assert (await submitted(client, key, "season", player, 3))["period"] == "all"
    assert (await client.delete("/v1/admin/leaderboards/season", headers=bearer(admin))).is_success
    await create_board(client, admin, "season", reset="daily")  # within the same clock tick
    today = key_of(clock.now().replace(hour=0, minute=0, second=0, microsecond=0))
    again = await submitted(client, key, "season", player, 4)
    assert (again["period"], again["score"]) == (today, 4)
    periods = await read(client, key, "/v1/leaderboards/season/periods")
    assert [p["period"] for p in periods["periods"]] == [today]
    async with state.read_sessions() as session:
        recorded = await session.scalars(
            select(LeaderboardPeriod.period).where(LeaderboardPeriod.board_id == "season")
        )
        assert list(recorded) == [today]


async def test_a_lost_writer_connection_is_replaced(
    client: httpx.AsyncClient, state: AppState, settings: Settings
) -> None:
    _postgres_only(settings)
    admin, key = await admin_key(state), await board_key(state)
    await create_board(client, admin, "xp", operator="increment")
    (player,) = await make_players(state, 1)
    await submitted(client, key, "xp", player, 1)
    admin_connection = await _admin_connection(settings)
    try:
        ended = await admin_connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1 AND datname = current_database()",
            writer.RecordWriter.thread_name,
        )
    finally:
        await admin_connection.close()
    assert ended == 1
    await asyncio.sleep(0.1)
    answers = [await submit(client, key, "xp", player, 1) for _ in range(3)]
    # At worst the group that found the connection gone answers 503; the next ones are written.
    assert answers[0].status_code in (200, 503)
    assert [a.status_code for a in answers[1:]] == [200, 200]
    written = sum(1 for a in answers if a.status_code == 200)
    record = await read(client, key, f"/v1/leaderboards/xp/records/{player}")
    assert record["score"] == 1 + written


async def test_the_first_reads_of_a_process_open_one_pool_and_build_one_index(
    client: httpx.AsyncClient,
    state: AppState,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin, key = await admin_key(state), await board_key(state)
    await create_board(client, admin, "kills")
    players = await make_players(state, 3)
    for score, player in enumerate(players, start=1):
        await submitted(client, key, "kills", player, score)
    builds: list[str] = []
    for name in ("_index_postgres", "_load_sqlite"):
        original = getattr(standings, name)

        def counted(*args: Any, _original: Any = original, _name: str = name) -> Any:
            builds.append(_name)
            return _original(*args)

        monkeypatch.setattr(standings, name, counted)
    indexes = await asyncio.gather(
        *(state.leaderboards.standings.index("kills", "all") for _ in range(5))
    )
    assert len(builds) == 1
    assert all(index is indexes[0] for index in indexes)
    paths = [f"/v1/leaderboards/kills/records/{p}" for p in players] * 3
    answers = await asyncio.gather(*(client.get(p, headers=bearer(key)) for p in paths))
    assert [a.json()["rank"] for a in answers] == [3, 2, 1] * 3
    assert len(builds) == 1
    if not settings.is_sqlite:
        admin_connection = await _admin_connection(settings)
        try:
            opened = await admin_connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'homeport-lookups'"
                " AND datname = current_database()"
            )
        finally:
            await admin_connection.close()
        assert opened == POOL_SIZE


async def test_unknown_players_on_a_board_never_written_are_refused_alone(
    client: httpx.AsyncClient, state: AppState
) -> None:
    admin, key = await admin_key(state), await board_key(state)
    await create_board(client, admin, "fresh", operator="latest")
    (player,) = await make_players(state, 1)
    answers = await asyncio.gather(
        submit(client, key, "fresh", uuid.uuid4(), 1),
        submit(client, key, "fresh", player, 2),
        submit(client, key, "gone", player, 3),
        submit(client, key, "fresh", player, 4),
    )
    assert [a.status_code for a in answers] == [404, 200, 404, 200]
    assert [a.json()["score"] for a in (answers[1], answers[3])] == [2, 4]
