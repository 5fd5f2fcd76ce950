"""The reference server's world against a live Homeport, as real processes: saved while
players build, loaded exactly as last saved after a kill -9, saved and handed back on SIGTERM,
and loaded from the server's own backup when Homeport cannot be reached."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from homeport.sim.player import connect
from homeport.sim.world import chunk_of
from tests.sim.conftest import Backend, Sim, wait_for

pytestmark = pytest.mark.e2e

StartSim = Callable[..., Sim]
UNREACHABLE = "http://127.0.0.1:9"
"""The discard port: nothing listens there, so every call fails at once."""


def latest(backend: Backend, world: str) -> dict[str, Any] | None:
    answer = backend.http.get(
        f"/v1/worlds/{world}", headers={"Authorization": f"Bearer {backend.key}"}
    )
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def stored_cell(backend: Backend, world: str, x: int, y: int) -> int | None:
    """A cell's value in the world's latest snapshot, read as any server would; None before
    the first save."""
    detail = latest(backend, world)
    if detail is None or detail["latest"] is None:
        return None
    chunk_id, offset = chunk_of(x, y)
    digest = detail["latest"]["manifest"][chunk_id]
    data = backend.http.get(
        f"/v1/worlds/{world}/chunks/{digest}", headers={"Authorization": f"Bearer {backend.key}"}
    ).content
    assert hashlib.sha256(data).hexdigest() == digest
    return data[offset]


async def test_a_killed_server_comes_back_with_its_last_complete_save(
    backend: Backend, start_sim: StartSim
) -> None:
    world = f"w-{uuid.uuid4().hex[:8]}"
    sim = start_sim("--world", world, "--world-save-interval", "0.3")
    sim.wait_listed()
    player = await connect("127.0.0.1", sim.port, backend.new_player()[1], timeout=5)
    for _ in range(3):
        assert await player.cell("BUILD", 5, 40) in (1, 2, 3)
    assert await player.cell("BUILD", 63, 0) == 1
    wait_for(lambda: stored_cell(backend, world, 5, 40) == 3, what="the builds saved")
    wait_for(lambda: stored_cell(backend, world, 63, 0) == 1, what="the second build saved")
    saved_seq = latest(backend, world)["latest"]["seq"]  # type: ignore[index]
    sim.kill()
    await player.close()

    again = start_sim("--world", world, "--world-save-interval", "0.3")
    again.wait_listed()
    assert (
        f"loaded: snapshot {saved_seq}"
        in wait_for(lambda: "loaded" in again.log() and again.log(), what="the world loaded")
        or "loaded: snapshot" in again.log()
    )
    back = await connect("127.0.0.1", again.port, backend.new_player()[1], timeout=5)
    assert await back.cell("LOOK", 5, 40) == 3
    assert await back.cell("LOOK", 63, 0) == 1
    assert await back.cell("LOOK", 0, 0) == 0
    await back.quit()
    again.terminate()
    assert again.wait(15) == 0


async def test_sigterm_saves_the_world_and_gives_its_lease_back(
    backend: Backend, start_sim: StartSim, tmp_path: Path
) -> None:
    world = f"w-{uuid.uuid4().hex[:8]}"
    backup = tmp_path / "backup.json"
    sim = start_sim(
        "--world", world, "--world-save-interval", "3600", "--world-backup", str(backup)
    )
    sim.wait_listed()
    player = await connect("127.0.0.1", sim.port, backend.new_player()[1], timeout=5)
    assert await player.cell("BUILD", 17, 17) == 1
    assert await player.cell("LOOK", 17, 17) == 1
    sim.terminate()
    assert await player.wait_closed_by_server() == "BYE draining"
    assert sim.wait(15) == 0, sim.log()
    detail = latest(backend, world)
    assert detail is not None
    assert detail["world"]["lease_holder"] is None
    assert stored_cell(backend, world, 17, 17) == 1
    assert backup.is_file()

    # Homeport out of reach: the next start loads the copy on its own disk.
    offline = start_sim("--world", world, "--world-backup", str(backup), "--url", UNREACHABLE)
    wait_for(lambda: "loaded the local backup" in offline.log(), what="the backup loaded")
