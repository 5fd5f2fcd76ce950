"""Saving and loading worlds over HTTP, on each database and each storage."""

from __future__ import annotations

import base64
import hashlib
import os

import httpx
import pytest

from homeport.identity.server_keys import KeyKind
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type
from tests.worlds.saving import OCTETS, load, random_chunks, save, sha, upload


@pytest.fixture
async def key(state: AppState) -> str:
    return await make_key(state, scopes={"worlds"})


async def test_a_save_loads_back_exactly(client: httpx.AsyncClient, key: str) -> None:
    chunks = random_chunks(6, size=3000)
    chunks["empty"] = b""
    committed = await save(client, key, "island", chunks, metadata={"seed": 42})
    assert committed.status_code == 201, committed.text
    snapshot = committed.json()
    assert snapshot["seq"] == 1
    assert snapshot["chunk_count"] == 7
    assert snapshot["total_bytes"] == 6 * 3000
    assert snapshot["metadata"] == {"seed": 42}
    assert await load(client, key, "island") == chunks
    world = (await client.get("/v1/worlds/island", headers=bearer(key))).json()["world"]
    assert world["latest_seq"] == 1
    assert world["owner"].startswith("key:")


async def test_unchanged_chunks_are_never_uploaded_twice(
    client: httpx.AsyncClient, key: str, state: AppState
) -> None:
    chunks = random_chunks(20)
    assert (await save(client, key, "w", chunks)).status_code == 201
    changed = dict(chunks)
    changed["c3"] = os.urandom(256)
    changed["new"] = os.urandom(256)
    asked = await client.post(
        "/v1/worlds/w/chunks/missing",
        json={"hashes": [sha(d) for d in changed.values()]},
        headers=bearer(key),
    )
    assert asked.json()["missing"] == [sha(changed["c3"]), sha(changed["new"])]
    again = await upload(client, key, "w", chunks["c0"])
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert (await save(client, key, "w", changed, base=1)).status_code == 201
    world = (await client.get("/v1/worlds/w", headers=bearer(key))).json()
    assert world["world"]["chunks"] == 22  # 20 + 2 new; the old c3 waits for the collector
    assert await load(client, key, "w") == changed


async def test_changes_apply_to_the_base_snapshot(client: httpx.AsyncClient, key: str) -> None:
    chunks = random_chunks(4)
    assert (await save(client, key, "w", chunks)).status_code == 201
    fresh = os.urandom(64)
    assert (await upload(client, key, "w", fresh)).status_code == 201
    delta = {"base": 1, "changes": {"c1": sha(fresh), "extra": sha(fresh)}, "removed": ["c2"]}
    committed = await client.post("/v1/worlds/w/snapshots", json=delta, headers=bearer(key))
    assert committed.status_code == 201, committed.text
    expected = {"c0": chunks["c0"], "c1": fresh, "c3": chunks["c3"], "extra": fresh}
    assert await load(client, key, "w") == expected
    stale = await client.post("/v1/worlds/w/snapshots", json=delta, headers=bearer(key))
    assert stale.status_code == 409
    assert problem_type(stale) == "snapshot-conflict"
    assert stale.json()["latest"] == 2


async def test_an_interrupted_save_leaves_the_last_complete_one(
    client: httpx.AsyncClient, key: str
) -> None:
    first = random_chunks(5, prefix="a")
    assert (await save(client, key, "w", first)).status_code == 201
    second = {**first, **random_chunks(5, prefix="b")}
    uploaded = list(second.values())[5:8]  # the server dies after three of five uploads
    for data in uploaded:
        assert (await upload(client, key, "w", data)).status_code == 201
    assert await load(client, key, "w") == first
    # Its replacement commits without uploading the rest: refused, nothing changes.
    manifest = {chunk_id: sha(data) for chunk_id, data in second.items()}
    refused = await client.post(
        "/v1/worlds/w/snapshots", json={"manifest": manifest}, headers=bearer(key)
    )
    assert refused.status_code == 409
    assert problem_type(refused) == "chunks-missing"
    assert sorted(refused.json()["missing"]) == sorted(sha(d) for d in list(second.values())[8:])
    assert await load(client, key, "w") == first
    assert (await save(client, key, "w", second, base=1)).status_code == 201
    assert await load(client, key, "w") == second


async def test_corrupted_uploads_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, key: str, state: AppState
) -> None:
    data = os.urandom(5000)
    torn = await client.put(
        f"/v1/worlds/w/chunks/{sha(data)}", content=data[:4000], headers={**bearer(key), **OCTETS}
    )
    assert torn.status_code == 422
    assert problem_type(torn) == "hash-mismatch"
    wrong_md5 = base64.b64encode(hashlib.md5(b"other", usedforsecurity=False).digest()).decode()
    refused = await upload(client, key, "w", data, **{"content-md5": wrong_md5})
    assert refused.status_code == 422
    assert problem_type(refused) == "hash-mismatch"
    gone = await client.head(f"/v1/worlds/w/chunks/{sha(data)}", headers=bearer(key))
    assert gone.status_code == 404
    assert list(state.worlds.storage.spool_dir.iterdir()) == []
    right_md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
    stored = await upload(client, key, "w", data, **{"content-md5": right_md5})
    assert stored.status_code == 201


async def test_chunks_are_served_with_etags_and_ranges(client: httpx.AsyncClient, key: str) -> None:
    data = bytes(range(256)) * 4
    assert (await upload(client, key, "w", data)).status_code == 201
    url = f"/v1/worlds/w/chunks/{sha(data)}"
    whole = await client.get(url, headers=bearer(key))
    assert whole.content == data
    assert whole.headers["etag"] == f'"{sha(data)}"'
    assert whole.headers["accept-ranges"] == "bytes"
    head = await client.head(url, headers=bearer(key))
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(data))
    cases = {"bytes=10-19": (10, 20), "bytes=1000-": (1000, 1024), "bytes=-5": (1019, 1024)}
    for header, (start, end) in cases.items():
        part = await client.get(url, headers={**bearer(key), "range": header})
        assert part.status_code == 206, header
        assert part.content == data[start:end]
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/1024"
    past = await client.get(url, headers={**bearer(key), "range": "bytes=2000-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == "bytes */1024"
    cached = await client.get(url, headers={**bearer(key), "if-none-match": f'"{sha(data)}"'})
    assert cached.status_code == 304
    other = await client.get(
        url, headers={**bearer(key), "range": "bytes=0-1", "if-range": '"other"'}
    )
    assert other.status_code == 200
    assert other.content == data


async def test_snapshots_history_and_old_manifests(client: httpx.AsyncClient, key: str) -> None:
    saves = [random_chunks(2, prefix=f"s{i}-") for i in range(3)]
    for i, chunks in enumerate(saves):
        assert (await save(client, key, "w", chunks, base=i or None)).status_code == 201
    listed = (await client.get("/v1/worlds/w/snapshots?limit=2", headers=bearer(key))).json()
    assert [s["seq"] for s in listed["snapshots"]] == [3, 2]
    rest = await client.get(
        f"/v1/worlds/w/snapshots?before={listed['next_before']}", headers=bearer(key)
    )
    assert [s["seq"] for s in rest.json()["snapshots"]] == [1]
    first = (await client.get("/v1/worlds/w/snapshots/1", headers=bearer(key))).json()
    assert first["manifest"] == {cid: sha(d) for cid, d in saves[0].items()}
    missing = await client.get("/v1/worlds/w/snapshots/9", headers=bearer(key))
    assert missing.status_code == 404


async def test_bad_input_gets_clear_refusals(
    client: httpx.AsyncClient, key: str, state: AppState
) -> None:
    h = bearer(key)
    data = b"x" * 100
    url = f"/v1/worlds/w/chunks/{sha(data)}"
    as_json = await client.put(url, content=data, headers={**h, "content-type": "application/json"})
    assert as_json.status_code == 415
    too_big = state.settings.worlds_chunk_max_bytes + 1
    huge = await client.put(
        url, content=b"", headers={**h, **OCTETS, "content-length": str(too_big)}
    )
    assert huge.status_code == 413
    assert (
        await client.put("/v1/worlds/w/chunks/nothex", content=data, headers=h)
    ).status_code == 422
    bad_name = await client.get("/v1/worlds/-bad", headers=h)
    assert bad_name.status_code == 422
    both = {"manifest": {}, "changes": {"a": sha(data)}, "base": 1}
    assert (await client.post("/v1/worlds/w/snapshots", json=both, headers=h)).status_code == 422
    spaced = {"manifest": {"a b": sha(data)}}
    assert (await client.post("/v1/worlds/w/snapshots", json=spaced, headers=h)).status_code == 422
    assert (await client.get("/v1/worlds/nowhere", headers=h)).status_code == 404


async def test_worlds_belong_to_their_owner(
    client: httpx.AsyncClient, key: str, state: AppState
) -> None:
    assert (await save(client, key, "mine", random_chunks(1))).status_code == 201
    other = await make_key(state, scopes={"worlds"})
    refused = await client.get("/v1/worlds/mine", headers=bearer(other))
    assert refused.status_code == 403
    assert problem_type(refused) == "not-world-owner"
    unscoped = await make_key(state, scopes={"registry"})
    assert (await client.get("/v1/worlds/mine", headers=bearer(unscoped))).status_code == 403
    admin = await make_key(state, kind=KeyKind.ADMIN)
    moved = await client.put("/v1/worlds/mine", json={"owner": ""}, headers=bearer(admin))
    assert moved.status_code == 200
    assert moved.json()["owner"] == ""
    assert (await client.get("/v1/worlds/mine", headers=bearer(other))).status_code == 200
    listed = await client.get("/v1/worlds", headers=bearer(admin))
    assert [w["name"] for w in listed.json()["worlds"]] == ["mine"]
    digest = (await client.get("/v1/worlds/mine", headers=bearer(admin))).json()
    key_of_chunk = next(iter(digest["latest"]["manifest"].values()))
    assert (await client.delete("/v1/worlds/mine", headers=bearer(admin))).status_code == 204
    assert (await client.get("/v1/worlds/mine", headers=bearer(admin))).status_code == 404
    gone = await client.get(f"/v1/worlds/mine/chunks/{key_of_chunk}", headers=bearer(admin))
    assert gone.status_code == 404
