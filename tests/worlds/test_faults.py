"""What goes wrong around a save: racing first saves, storage that fails or lost an object,
and malformed ranges and metadata. Every answer is a problem a server can act on, never a 500
or a response that stops short."""

from __future__ import annotations

import asyncio
import json
import os

import httpx
import pytest
from sqlalchemy import func, select

from homeport.identity.server_keys import KeyKind
from homeport.state import AppState
from homeport.worlds import gc
from homeport.worlds.models import Chunk, DoomedObject
from tests.factories import bearer, make_key, problem_type
from tests.worlds.saving import random_chunks, save, sha, upload


@pytest.fixture
async def key(state: AppState) -> str:
    return await make_key(state, scopes={"worlds"})


async def test_two_servers_saving_a_new_world_at_once(
    client: httpx.AsyncClient, state: AppState
) -> None:
    for round_ in range(5):  # the same key twice: both may write it, one after the other
        same = await make_key(state, scopes={"worlds"})
        answers = await asyncio.gather(
            *(
                client.post(
                    f"/v1/worlds/race-{round_}/chunks/missing",
                    json={"hashes": []},
                    headers=bearer(same),
                )
                for _ in range(2)
            )
        )
        assert sorted(a.status_code for a in answers) == [200, 200], [a.text for a in answers]
    keys = [await make_key(state, scopes={"worlds"}) for _ in range(2)]
    answers = await asyncio.gather(
        *(client.put("/v1/worlds/contested", json={}, headers=bearer(k)) for k in keys)
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 403], [a.text for a in answers]  # created, then not its owner


async def test_a_chunk_whose_bytes_are_lost_is_a_503_not_a_short_200(
    client: httpx.AsyncClient, key: str, state: AppState
) -> None:
    data = os.urandom(5000)
    assert (await upload(client, key, "w", data)).status_code == 201
    async with state.read_sessions() as session:
        object_key = await session.scalar(select(Chunk.object_key))
    assert object_key is not None
    await (await state.worlds.started()).delete([object_key])
    lost = await client.get(f"/v1/worlds/w/chunks/{sha(data)}", headers=bearer(key))
    assert lost.status_code == 503
    assert problem_type(lost) == "storage-unavailable"


async def test_objects_the_storage_could_not_delete_are_deleted_later(
    client: httpx.AsyncClient, key: str, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await make_key(state, kind=KeyKind.ADMIN)
    assert (await save(client, key, "doomed", random_chunks(3))).status_code == 201
    async with state.read_sessions() as session:
        keys = list(await session.scalars(select(Chunk.object_key)))
    storage = await state.worlds.started()

    async def unreachable(_keys: object) -> None:
        raise OSError("storage unreachable")

    monkeypatch.setattr(storage, "delete", unreachable)
    deleted = await client.delete("/v1/worlds/doomed", headers=bearer(admin))
    assert deleted.status_code == 204  # the world is gone; its bytes wait for the collector
    for object_key in keys:
        assert await storage.exists(object_key)
    monkeypatch.undo()
    await gc.collect(state.worlds)
    for object_key in keys:
        assert not await storage.exists(object_key)
    async with state.read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DoomedObject)) == 0


async def test_malformed_ranges_and_metadata(client: httpx.AsyncClient, key: str) -> None:
    data = os.urandom(100)
    assert (await upload(client, key, "w", data)).status_code == 201
    url = f"/v1/worlds/w/chunks/{sha(data)}"
    for header in ("bytes=\u00b2-", "bytes=0-" + "9" * 5000, "bytes=a-b", "items=0-1"):
        headers = [(b"authorization", f"Bearer {key}".encode()), (b"range", header.encode())]
        whole = await client.get(url, headers=headers)
        assert whole.status_code == 200, header[:20]
        assert whole.content == data
    assert (await upload(client, key, "w", b"")).status_code == 201
    empty = await client.get(
        f"/v1/worlds/w/chunks/{sha(b'')}", headers={**bearer(key), "range": "bytes=-5"}
    )
    assert empty.status_code == 416
    for metadata in ({"n": 2**70}, {"x": float("nan")}):
        body = {"manifest": {}, "metadata": metadata}
        refused = await client.post(
            "/v1/worlds/w/snapshots",
            content=json.dumps(body),
            headers={**bearer(key), "content-type": "application/json"},
        )
        assert refused.status_code == 422, refused.text
