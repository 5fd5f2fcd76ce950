"""Retention and garbage collection: old snapshots go, their unshared chunks go, nothing a kept
snapshot or a save in progress needs ever goes."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from homeport.clock import FakeClock
from homeport.settings import Settings
from homeport.state import AppState
from homeport.worlds import gc
from homeport.worlds.models import Chunk
from homeport.worlds.retention import kept
from tests.factories import bearer, make_key
from tests.worlds.saving import load, random_chunks, save, sha, upload


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"worlds_keep_last": 2, "worlds_keep_daily_days": 0, "worlds_upload_grace": 600}
    )


@pytest.fixture
async def key(state: AppState) -> str:
    return await make_key(state, scopes={"worlds"})


async def _objects(state: AppState) -> dict[str, str]:
    async with state.read_sessions() as session:
        rows = await session.execute(select(Chunk.sha256, Chunk.object_key))
        return {row.sha256: row.object_key for row in rows.all()}


async def test_old_snapshots_and_their_chunks_are_collected(
    client: httpx.AsyncClient, key: str, state: AppState, clock: FakeClock
) -> None:
    shared = os.urandom(100)
    saves = [{"shared": shared, **random_chunks(2, prefix=f"s{i}-")} for i in range(4)]
    for i, chunks in enumerate(saves):
        assert (await save(client, key, "w", chunks, base=i or None)).status_code == 201
    before = await _objects(state)
    storage = await state.worlds.started()
    result = await gc.collect(state.worlds)
    assert result.snapshots == 2
    assert result.chunks == 0  # their chunks are still within the upload grace
    clock.advance(601)
    result = await gc.collect(state.worlds)
    assert result.chunks == 4  # two saves of two unshared chunks
    after = await _objects(state)
    for i in (0, 1):
        for data in list(saves[i].values())[1:]:
            assert sha(data) not in after
            assert not await storage.exists(before[sha(data)])
    assert sha(shared) in after
    listed = (await client.get("/v1/worlds/w/snapshots", headers=bearer(key))).json()
    assert [s["seq"] for s in listed["snapshots"]] == [4, 3]
    assert await load(client, key, "w") == saves[3]
    for object_key in after.values():
        assert await storage.exists(object_key)


async def test_a_save_in_progress_keeps_its_chunks(
    client: httpx.AsyncClient, key: str, state: AppState, clock: FakeClock
) -> None:
    first = random_chunks(3)
    assert (await save(client, key, "w", first)).status_code == 201
    assert (await save(client, key, "w", random_chunks(3, prefix="x"), base=1)).status_code == 201
    assert (await save(client, key, "w", random_chunks(3, prefix="y"), base=2)).status_code == 201
    # Snapshot 1 is past retention; a save that will reuse its chunks is starting.
    uploaded = os.urandom(50)
    assert (await upload(client, key, "w", uploaded)).status_code == 201
    clock.advance(601)
    wanted = [sha(d) for d in first.values()]
    asked = await client.post(
        "/v1/worlds/w/chunks/missing", json={"hashes": wanted}, headers=bearer(key)
    )
    assert asked.json()["missing"] == []
    await gc.collect(state.worlds)
    manifest = {**{cid: sha(d) for cid, d in first.items()}, "late": sha(uploaded)}
    committed = await client.post(
        "/v1/worlds/w/snapshots", json={"manifest": manifest, "base": 3}, headers=bearer(key)
    )
    # The reused chunks were touched by the question; the lone upload was past the grace.
    assert committed.status_code == 409
    assert committed.json()["missing"] == [sha(uploaded)]
    assert (await upload(client, key, "w", uploaded)).status_code == 201
    committed = await client.post(
        "/v1/worlds/w/snapshots", json={"manifest": manifest, "base": 3}, headers=bearer(key)
    )
    assert committed.status_code == 201
    assert await load(client, key, "w") == {**first, "late": uploaded}


async def test_collection_during_saves_never_breaks_a_kept_snapshot(
    client: httpx.AsyncClient, key: str, state: AppState, clock: FakeClock
) -> None:
    """Saves that reuse old chunks race collector passes; every kept snapshot stays whole."""
    pool = [os.urandom(64) for _ in range(12)]
    assert (await save(client, key, "w", {f"c{i}": d for i, d in enumerate(pool[:4])})).is_success
    stop = asyncio.Event()

    async def collector() -> None:
        while not stop.is_set():
            await gc.collect(state.worlds)
            await asyncio.sleep(0)

    running = asyncio.create_task(collector())
    try:
        for round_ in range(12):
            clock.advance(400)  # chunks drift past the grace between saves
            chosen = {f"c{i}": pool[(round_ + i * 5) % len(pool)] for i in range(4)}
            response = await save(client, key, "w", chosen, base=round_ + 1)
            assert response.status_code == 201, response.text
    finally:
        stop.set()
        await running
    await gc.collect(state.worlds)
    storage = await state.worlds.started()
    objects = await _objects(state)
    listed = (await client.get("/v1/worlds/w/snapshots", headers=bearer(key))).json()
    assert len(listed["snapshots"]) == 2
    for snapshot in listed["snapshots"]:
        detail = await client.get(f"/v1/worlds/w/snapshots/{snapshot['seq']}", headers=bearer(key))
        for digest in detail.json()["manifest"].values():
            assert await storage.exists(objects[digest])


def test_retention_keeps_the_newest_and_one_per_recent_day() -> None:
    now = datetime(2026, 6, 10, 12, tzinfo=UTC)
    snapshots = [(seq, now - timedelta(hours=8 * (30 - seq))) for seq in range(1, 31)]
    chosen = kept(snapshots, keep_last=3, daily_days=3, now=now)
    by_day: dict[object, int] = {}
    for seq, created in snapshots:
        by_day[created.date()] = max(by_day.get(created.date(), 0), seq)
    recent_days = {now.date() - timedelta(days=d) for d in range(3)}
    expected = {28, 29, 30} | {seq for day, seq in by_day.items() if day in recent_days}
    assert chosen == expected
    assert kept(snapshots, keep_last=1, daily_days=0, now=now) == {30}
