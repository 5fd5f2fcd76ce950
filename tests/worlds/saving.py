"""How a dedicated server saves and loads a world over HTTP, for the tests."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx

from tests.factories import bearer

OCTETS = {"content-type": "application/octet-stream"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_chunks(n: int, size: int = 256, prefix: str = "c") -> dict[str, bytes]:
    return {f"{prefix}{i}": os.urandom(size) for i in range(n)}


async def upload(
    client: httpx.AsyncClient, key: str, world: str, data: bytes, **headers: str
) -> httpx.Response:
    return await client.put(
        f"/v1/worlds/{world}/chunks/{sha(data)}",
        content=data,
        headers={**bearer(key), **OCTETS, **headers},
    )


async def save(
    client: httpx.AsyncClient,
    key: str,
    world: str,
    chunks: dict[str, bytes],
    *,
    base: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> httpx.Response:
    """A whole save as a server does it: ask what is missing, upload that, commit."""
    manifest = {chunk_id: sha(data) for chunk_id, data in chunks.items()}
    asked = await client.post(
        f"/v1/worlds/{world}/chunks/missing",
        json={"hashes": list(manifest.values())},
        headers=bearer(key),
    )
    if asked.status_code != 200:
        return asked
    by_hash = {sha(data): data for data in chunks.values()}
    for missing in asked.json()["missing"]:
        stored = await upload(client, key, world, by_hash[missing])
        assert stored.status_code == 201, stored.text
    body: dict[str, Any] = {"manifest": manifest, "metadata": metadata or {}}
    if base is not None:
        body["base"] = base
    return await client.post(f"/v1/worlds/{world}/snapshots", json=body, headers=bearer(key))


async def load(client: httpx.AsyncClient, key: str, world: str) -> dict[str, bytes]:
    """The world's latest complete save, every chunk read back and checked."""
    detail = await client.get(f"/v1/worlds/{world}", headers=bearer(key))
    assert detail.status_code == 200, detail.text
    latest = detail.json()["latest"]
    if latest is None:
        return {}
    loaded = {}
    for chunk_id, digest in latest["manifest"].items():
        got = await client.get(f"/v1/worlds/{world}/chunks/{digest}", headers=bearer(key))
        assert got.status_code == 200, got.text
        assert sha(got.content) == digest
        loaded[chunk_id] = got.content
    return loaded
