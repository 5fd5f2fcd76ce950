"""Who reads and writes which player's documents, and what validate hands a server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from homeport.identity.server_keys import KeyKind
from homeport.settings import CollectionRule, Settings
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type, register


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    rules = {
        "profile": CollectionRule(read="owner", write="server"),
        "settings": CollectionRule(read="owner", write="owner", unversioned_writes=True),
        "card": CollectionRule(read="public", write="server"),
    }
    return make_settings(players_collections=rules)


async def _put(
    client: httpx.AsyncClient, headers: dict[str, str], player: str, collection: str
) -> httpx.Response:
    return await client.put(
        f"/v1/players/{player}/data/{collection}/main",
        json={"value": {"n": 1}},
        headers={**headers, "If-Match": "0"} if collection != "settings" else headers,
    )


async def test_permission_matrix(client: httpx.AsyncClient, state: AppState) -> None:
    ann, bob = await register(client, name="Ann"), await register(client, name="Bob")
    ann_id = ann["player"]["id"]
    as_ann, as_bob = bearer(ann["access_token"]), bearer(bob["access_token"])
    writer = bearer(await make_key(state, scopes={"players:write"}))
    reader = bearer(await make_key(state, scopes={"players:read"}))
    unscoped = bearer(await make_key(state, scopes={"registry"}))
    admin = bearer(await make_key(state, kind=KeyKind.ADMIN))
    for collection in ("profile", "card", "secret"):
        assert (await _put(client, writer, ann_id, collection)).status_code == 200

    def path(collection: str, player: str = ann_id) -> str:
        return f"/v1/players/{player}/data/{collection}/main"

    reads: list[tuple[dict[str, str], str, int]] = [
        (writer, "secret", 200),
        (reader, "secret", 200),
        (admin, "secret", 200),
        (unscoped, "profile", 403),
        (as_ann, "profile", 200),  # owner_read
        (as_ann, "card", 200),
        (as_ann, "secret", 403),  # not listed: servers only
        (as_bob, "profile", 403),  # another player's owner-only data
        (as_bob, "card", 200),  # public_read
    ]
    for headers, collection, expected in reads:
        response = await client.get(path(collection), headers=headers)
        assert response.status_code == expected, (collection, response.text)
    assert (await client.get(path("profile", "me"), headers=as_ann)).status_code == 200

    writes: list[tuple[dict[str, str], str, int]] = [
        (reader, "profile", 403),
        (unscoped, "profile", 403),
        (as_ann, "profile", 403),  # servers write the profile, not the player
        (as_ann, "settings", 200),  # owner_write
        (as_bob, "settings", 403),
        (admin, "card", 409),  # allowed; If-Match 0 on an existing document
    ]
    for headers, collection, expected in writes:
        response = await _put(client, headers, ann_id, collection)
        assert response.status_code == expected, (collection, response.text)
    assert problem_type(await _put(client, unscoped, ann_id, "profile")) == "missing-scope"
    assert problem_type(await _put(client, as_bob, ann_id, "settings")) == "collection-forbidden"
    # `me` is for players; a key must name the player.
    assert (await _put(client, writer, "me", "profile")).status_code == 404
    assert (await client.get(path("profile"))).status_code == 401

    # The index shows each caller only what it may read.
    index = await client.get(f"/v1/players/{ann_id}/data", headers=as_bob)
    assert list(index.json()["collections"]) == ["card"]
    index = await client.get(f"/v1/players/{ann_id}/data", headers=as_ann)
    assert sorted(index.json()["collections"]) == ["card", "profile", "settings"]
    index = await client.get(f"/v1/players/{ann_id}/data", headers=reader)
    assert sorted(index.json()["collections"]) == ["card", "profile", "secret", "settings"]


async def test_validate_hands_the_server_the_profile(
    client: httpx.AsyncClient, state: AppState
) -> None:
    ann = await register(client)
    key = await make_key(state, scopes={"validate", "players:write"})
    ann_id = ann["player"]["id"]

    async def validate() -> dict[str, Any]:
        body = {"player_token": ann["access_token"]}
        response = await client.post("/v1/validate", json=body, headers=bearer(key))
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    assert await validate() == {"profile": {}}
    profile = {"xp": 1200, "level": 7, "cosmetics": ["red-hat"]}
    saved = await client.put(
        f"/v1/players/{ann_id}/data/profile/main",
        json={"value": profile, "version": 0},
        headers=bearer(key),
    )
    assert saved.status_code == 200
    await client.put(
        f"/v1/players/{ann_id}/data/card/main",
        json={"value": {"not": "sent"}, "version": 0},
        headers=bearer(key),
    )
    assert await validate() == {"profile": {"main": {"value": profile, "version": 1}}}
