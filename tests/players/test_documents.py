"""Player documents: versions, merge patches, batches, limits — on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from homeport.clock import FakeClock
from homeport.db.session import unit_of_work
from homeport.players import documents
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type, register


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(players_document_max_bytes=2048, players_player_max_bytes=4096)


@pytest.fixture
async def server(state: AppState) -> dict[str, str]:
    return bearer(await make_key(state, scopes={"players:write"}))


@pytest.fixture
async def player(client: httpx.AsyncClient) -> str:
    body = await register(client)
    player_id: str = body["player"]["id"]
    return player_id


def _doc(player: str, collection: str = "profile", key: str = "main") -> str:
    return f"/v1/players/{player}/data/{collection}/{key}"


async def _put(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    path: str,
    value: dict[str, Any],
    version: int | None = None,
) -> httpx.Response:
    extra = {} if version is None else {"If-Match": f'"{version}"'}
    return await client.put(path, json={"value": value}, headers={**headers, **extra})


async def test_versions_grow_and_a_stale_writer_loses(
    client: httpx.AsyncClient, server: dict[str, str], player: str
) -> None:
    path = _doc(player)
    created = await _put(client, server, path, {"xp": 10, "level": 1}, version=0)
    assert created.status_code == 200, created.text
    assert created.json()["version"] == 1
    assert created.headers["etag"] == '"1"'
    # A create-only write (version 0) never overwrites.
    again = await _put(client, server, path, {"xp": 0}, version=0)
    assert again.status_code == 409
    assert problem_type(again) == "version-conflict"
    assert again.json()["current_version"] == 1

    # Two servers read version 1; the first save wins, the second is refused, nothing lost.
    first = await _put(client, server, path, {"xp": 250, "level": 2}, version=1)
    second = await _put(client, server, path, {"xp": 12, "level": 1}, version=1)
    assert first.status_code == 200
    assert first.json()["version"] == 2
    assert second.status_code == 409
    assert problem_type(second) == "version-conflict"
    read = await client.get(path, headers=server)
    assert read.json()["value"] == {"xp": 250, "level": 2}
    assert read.json()["version"] == 2
    assert read.headers["etag"] == '"2"'

    # The version may come in the body instead of If-Match.
    body = await client.put(path, json={"value": {"xp": 300}, "version": 2}, headers=server)
    assert body.status_code == 200
    assert body.json()["version"] == 3


async def test_unversioned_writes_only_where_the_collection_allows(
    client: httpx.AsyncClient, server: dict[str, str], player: str
) -> None:
    refused = await _put(client, server, _doc(player), {"xp": 1})
    assert refused.status_code == 428
    assert problem_type(refused) == "version-required"
    # `settings` takes last-writer-wins writes (see the default collection rules).
    for n in (1, 2):
        response = await _put(client, server, _doc(player, "settings"), {"volume": n})
        assert response.status_code == 200
        assert response.json()["version"] == n


async def test_concurrent_writers_of_one_version_exactly_one_wins(
    client: httpx.AsyncClient, server: dict[str, str], player: str
) -> None:
    path = _doc(player)
    await _put(client, server, path, {"xp": 0}, version=0)
    answers = await asyncio.gather(
        *(_put(client, server, path, {"xp": n}, version=1) for n in range(8))
    )
    assert sorted(a.status_code for a in answers) == [200] + [409] * 7
    assert (await client.get(path, headers=server)).json()["version"] == 2


async def test_merge_patch(client: httpx.AsyncClient, server: dict[str, str], player: str) -> None:
    path = _doc(player)
    start = {"xp": 5, "stats": {"hp": 10, "mp": 3}, "tags": ["a", "b"], "title": "Rookie"}
    await _put(client, server, path, start, version=0)
    patch = {"xp": 6, "stats": {"mp": None, "str": 2}, "tags": ["c"], "title": None}
    response = await client.patch(path, json=patch, headers={**server, "If-Match": "1"})
    assert response.status_code == 200, response.text
    assert response.json()["value"] == {"xp": 6, "stats": {"hp": 10, "str": 2}, "tags": ["c"]}
    assert response.json()["version"] == 2
    stale = await client.patch(path, json={"xp": 1}, headers={**server, "If-Match": "1"})
    assert problem_type(stale) == "version-conflict"
    # The merge-patch media type is accepted as JSON.
    typed = await client.patch(
        path,
        content=b'{"xp": 7}',
        headers={**server, "If-Match": "2", "Content-Type": "application/merge-patch+json"},
    )
    assert typed.status_code == 200
    assert typed.json()["value"]["xp"] == 7


async def test_batch_is_all_or_nothing(
    client: httpx.AsyncClient, server: dict[str, str], player: str
) -> None:
    await _put(client, server, _doc(player, "profile", "main"), {"xp": 1}, version=0)
    batch = f"/v1/players/{player}/data"
    failing = {
        "writes": [
            {"collection": "profile", "key": "main", "value": {"xp": 99}, "version": 1},
            {"collection": "progress", "key": "quests", "value": {"done": [1, 2]}, "version": 0},
            {"collection": "profile", "key": "main", "op": "patch", "patch": {}, "version": 1},
        ]
    }
    refused = await client.post(batch, json=failing, headers=server)
    assert refused.status_code == 409, refused.text
    assert problem_type(refused) == "version-conflict"
    assert refused.json()["index"] == 2
    assert (await client.get(_doc(player), headers=server)).json()["value"] == {"xp": 1}
    assert (await client.get(_doc(player, "progress", "quests"), headers=server)).status_code == 404

    failing["writes"][2]["version"] = 2
    saved = await client.post(batch, json=failing, headers=server)
    assert saved.status_code == 200, saved.text
    assert [w["version"] for w in saved.json()["writes"]] == [2, 1, 3]
    deleting = {
        "writes": [{"op": "delete", "collection": "progress", "key": "quests", "version": 1}]
    }
    assert (await client.post(batch, json=deleting, headers=server)).json()["writes"][0] == {
        "collection": "progress",
        "key": "quests",
        "version": 0,
    }
    index = (await client.get(batch, headers=server)).json()
    assert list(index["collections"]) == ["profile"]
    assert index["collections"]["profile"][0]["version"] == 3


async def test_limits_and_bad_documents(
    client: httpx.AsyncClient, server: dict[str, str], player: str
) -> None:
    path = _doc(player)
    too_big = await _put(client, server, path, {"blob": "x" * 3000}, version=0)
    assert too_big.status_code == 413
    assert problem_type(too_big) == "document-too-large"
    for key in ("a", "b"):
        ok = await _put(client, server, _doc(player, "progress", key), {"b": "x" * 1900}, version=0)
        assert ok.status_code == 200
    full = await _put(client, server, _doc(player, "progress", "c"), {"b": "x" * 1900}, version=0)
    assert full.status_code == 413
    assert problem_type(full) == "player-data-full"
    assert (await client.get(_doc(player, "progress", "c"), headers=server)).status_code == 404

    for body in (
        b'{"value": [1, 2]}',
        b'{"value": {"x": NaN}}',
        b'{"value": {"x": 1}, "extra": true}',
        b'{"value": {"x": 1}, "version": -1}',
        b'{"value": ' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}",
    ):
        response = await client.put(_doc(player, "profile", "z"), content=body, headers=server)
        assert response.status_code == 422, (body[:40], response.text)
    bad_match = await client.put(path, json={"value": {}}, headers={**server, "If-Match": "soon"})
    assert bad_match.status_code == 422
    for bad_path in (_doc(player, "Bad Collection"), _doc(player, "profile", "k" * 200)):
        assert (await client.get(bad_path, headers=server)).status_code == 422


async def test_unknown_player_and_documents_are_404(
    client: httpx.AsyncClient, server: dict[str, str], player: str
) -> None:
    nobody = "00000000-0000-4000-8000-000000000000"
    missing = await _put(client, server, _doc(nobody), {"x": 1}, version=0)
    assert missing.status_code == 404
    assert problem_type(missing) == "player-not-found"
    assert problem_type(await client.get(_doc(nobody), headers=server)) == "player-not-found"
    assert problem_type(await client.get(_doc(player), headers=server)) == "document-not-found"
    assert problem_type(await client.get(_doc("not-an-id"), headers=server)) == "player-not-found"
    gone = await client.delete(_doc(player), headers={**server, "If-Match": "1"})
    assert gone.status_code == 404


async def test_a_document_created_again_never_takes_an_old_version(
    client: httpx.AsyncClient,
    state: AppState,
    clock: FakeClock,
    server: dict[str, str],
    player: str,
) -> None:
    path = _doc(player)
    await _put(client, server, path, {"xp": 1}, version=0)
    deleted = await client.delete(path, headers={**server, "If-Match": "1"})
    assert deleted.status_code == 204
    assert (await client.get(path, headers=server)).status_code == 404
    assert (await client.get(f"/v1/players/{player}/data", headers=server)).json() == {
        "collections": {}
    }
    again = await _put(client, server, path, {"xp": 0}, version=0)
    assert again.json()["version"] == 3  # past the tombstone's 2
    # A server that read version 1 of the deleted document must not overwrite the new one.
    stale = await _put(client, server, path, {"xp": 999}, version=1)
    assert stale.status_code == 409
    assert (await client.get(path, headers=server)).json()["value"] == {"xp": 0}

    # Tombstones are forgotten after `players_tombstone_ttl`.
    assert (await client.delete(path, headers={**server, "If-Match": "3"})).status_code == 204
    clock.advance(state.settings.players_tombstone_ttl + 1)
    async with unit_of_work(state.sessions) as session:
        assert await documents.purge_tombstones(session, state.clock, state.settings) == 1
    assert (await _put(client, server, path, {"xp": 5}, version=0)).json()["version"] == 1
