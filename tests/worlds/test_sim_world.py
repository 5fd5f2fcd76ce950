"""The reference server's world code against the app: it recovers when its view of the latest
snapshot is wrong (an answer lost after a commit), and its backup holds only what was saved."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from homeport.settings import Settings
from homeport.sim.backend import Homeport, WorldCalls
from homeport.sim.world import SimWorld
from homeport.state import AppState
from tests.factories import bearer, make_key
from tests.worlds.saving import load


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Local storage only: what is tested here does not depend on where the bytes go."""
    return make_settings()


async def test_a_lost_commit_answer_is_caught_up_and_the_backup_is_what_was_saved(
    app: FastAPI, client: httpx.AsyncClient, state: AppState, tmp_path: Path
) -> None:
    key = await make_key(state, scopes={"worlds"})
    transport = httpx.ASGITransport(app=app)
    homeport = Homeport("http://homeport.test", key, transport=transport)
    backup = tmp_path / "backup.json"
    world = SimWorld(WorldCalls(homeport, "lost"), backup)
    try:
        assert await world.load() == "new"
        world.build(1, 1)
        assert await world.save("first")
        assert world.base == 1
        # The next commit lands but its answer never arrives: Homeport is one ahead.
        detail = (await client.get("/v1/worlds/lost", headers=bearer(key))).json()
        again = await client.post(
            "/v1/worlds/lost/snapshots",
            json={"base": 1, "manifest": detail["latest"]["manifest"]},
            headers=bearer(key),
        )
        assert again.json()["seq"] == 2
        world.build(2, 2)
        assert await world.save("after the lost answer")
        assert world.base == 3
        stored = await load(client, key, "lost")
        assert stored == {cid: bytes(data) for cid, data in world.chunks.items()}
        world.build(3, 3)  # built, not yet saved: not in the backup
        saved = json.loads(backup.read_text())
        assert saved["base"] == 3
        assert saved["chunks"] == {cid: data.hex() for cid, data in stored.items()}
    finally:
        await homeport.aclose()
