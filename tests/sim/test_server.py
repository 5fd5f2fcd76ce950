"""The reference dedicated server against a live Homeport, as real processes over real HTTP:
it registers and heartbeats, admits only players Homeport vouches for, saves them at every
moment that matters, and stops without losing anyone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from homeport.sim.player import Denied, SimPlayer, connect
from tests.sim.conftest import Backend, Sim

pytestmark = pytest.mark.e2e

StartSim = Callable[..., Sim]


async def join(sim: Sim, token: str) -> SimPlayer:
    return await connect("127.0.0.1", sim.port, token, timeout=5)


async def test_registers_admits_and_heartbeats_its_players(
    backend: Backend, start_sim: StartSim
) -> None:
    sim = start_sim("--map", "harbor", "--max-players", "2")
    server = sim.wait_listed(players=0)
    assert (server["map"], server["state"], server["max_players"]) == ("harbor", "ready", 2)
    assert (server["address"], server["port"]) == ("127.0.0.1", sim.port)

    ann_id, ann_token = backend.new_player()
    ann = await join(sim, ann_token)
    assert ann.player_id == ann_id
    assert ann.progress == {"xp": 0, "level": 1, "sessions": 1}
    await ann.ping()
    with pytest.raises(Denied) as bad_token:
        await join(sim, "not-a-token")
    assert bad_token.value.problem_type == "token-invalid"
    with pytest.raises(Denied) as twice:
        await join(sim, ann_token)
    assert twice.value.problem_type == "already-connected"
    sim.wait_listed(players=1)

    bob = await join(sim, backend.new_player()[1])
    with pytest.raises(Denied) as full:
        await join(sim, backend.new_player()[1])
    assert full.value.problem_type == "server-full"
    sim.wait_listed(players=2)

    await ann.quit()
    await bob.quit()
    sim.wait_listed(players=0)
    sim.terminate()
    assert sim.wait(10) == 0


async def test_level_up_and_leaving_save_and_a_return_resumes(
    backend: Backend, start_sim: StartSim
) -> None:
    sim = start_sim()
    sim.wait_listed()
    player_id, token = backend.new_player()
    player = await join(sim, token)
    assert await player.gain_xp(999) == (999, 1)
    assert backend.progress(player_id) == (None, 0)  # no key moment yet

    assert await player.gain_xp(1) == (1000, 2)  # a level up is saved at once
    assert backend.wait_progress(player_id, 1000) == ({"xp": 1000, "level": 2, "sessions": 1}, 1)

    await player.gain_xp(5)
    await player.close()  # gone without a word: saved all the same
    assert backend.wait_progress(player_id, 1005) == ({"xp": 1005, "level": 2, "sessions": 1}, 2)

    again = await join(sim, token)
    assert again.progress == {"xp": 1005, "level": 2, "sessions": 2}
    await again.quit()  # BYE comes once the save is done
    assert backend.progress(player_id) == ({"xp": 1005, "level": 2, "sessions": 2}, 3)
    sim.terminate()
    assert sim.wait(10) == 0


async def test_sigterm_drains_saves_every_player_and_deregisters(
    backend: Backend, start_sim: StartSim
) -> None:
    sim = start_sim("--grace", "8")
    sim.wait_listed()
    ids, players = [], []
    for gain in (100, 200, 300):
        player_id, token = backend.new_player()
        player = await join(sim, token)
        await player.gain_xp(gain)
        ids.append(player_id)
        players.append(player)
    sim.wait_listed(players=3)

    asked = time.monotonic()
    sim.terminate()
    async with asyncio.timeout(8):
        goodbyes = await asyncio.gather(*(p.wait_closed_by_server() for p in players))
    assert goodbyes == ["BYE draining"] * 3
    assert sim.wait(8) == 0
    assert time.monotonic() - asked < 8
    for player_id, gain in zip(ids, (100, 200, 300), strict=True):
        assert backend.progress(player_id) == ({"xp": gain, "level": 1, "sessions": 1}, 1)
    assert backend.listed(sim.name) is None  # deregistered, not left to its lease
    assert "stopped: saved 3 players" in sim.log()


async def test_the_stop_file_stops_it_like_sigterm(
    backend: Backend, start_sim: StartSim, tmp_path: Path
) -> None:
    stop_file = tmp_path / "stop-now"
    sim = start_sim(HOMEPORT_STOP_FILE=str(stop_file))
    sim.wait_listed()
    player_id, token = backend.new_player()
    player = await join(sim, token)
    await player.gain_xp(42)

    stop_file.touch()
    async with asyncio.timeout(8):
        assert await player.wait_closed_by_server() == "BYE draining"
    assert sim.wait(8) == 0
    assert backend.progress(player_id) == ({"xp": 42, "level": 1, "sessions": 1}, 1)
    assert backend.listed(sim.name) is None
    assert "stopped: saved 1 players" in sim.log()


async def test_under_the_wrapper_sigterm_reaches_it_as_the_stop_file(
    backend: Backend, start_sim: StartSim
) -> None:
    """As the fleet runs a game that cannot hear SIGTERM: the wrapper turns the signal into
    the stop file, and the server it wraps stops just as gracefully."""
    sim = start_sim(wrapped=True)
    sim.wait_listed()
    player_id, token = backend.new_player()
    player = await join(sim, token)
    await player.gain_xp(64)

    sim.terminate()  # the wrapper's pid: the server itself gets no signal
    async with asyncio.timeout(8):
        assert await player.wait_closed_by_server() == "BYE draining"
    assert sim.wait(8) == 0
    assert backend.progress(player_id) == ({"xp": 64, "level": 1, "sessions": 1}, 1)
    assert "stop requested: stop file" in sim.log()


async def test_connected_players_are_saved_periodically(
    backend: Backend, start_sim: StartSim
) -> None:
    sim = start_sim("--save-interval", "0.3")
    sim.wait_listed()
    player_id, token = backend.new_player()
    player = await join(sim, token)
    await player.gain_xp(7)
    assert backend.wait_progress(player_id, 7)[0] == {"xp": 7, "level": 1, "sessions": 1}
    await player.gain_xp(3)
    assert backend.wait_progress(player_id, 10)[0] == {"xp": 10, "level": 1, "sessions": 1}
    await player.ping()  # still connected all along
    await player.quit()
    sim.terminate()
    assert sim.wait(10) == 0


async def test_a_version_conflict_keeps_the_higher_xp(
    backend: Backend, start_sim: StartSim
) -> None:
    sim = start_sim()
    sim.wait_listed()
    behind_id, behind_token = backend.new_player()
    ahead_id, ahead_token = backend.new_player()
    behind = await join(sim, behind_token)
    ahead = await join(sim, ahead_token)
    # Someone else saves both players meanwhile: the server's versions are now stale.
    backend.put_progress(behind_id, {"xp": 5000, "level": 6, "sessions": 4}, 0)
    backend.put_progress(ahead_id, {"xp": 3, "level": 1, "sessions": 1}, 0)
    await behind.gain_xp(10)
    await ahead.gain_xp(10)

    await behind.quit()
    await ahead.quit()
    assert backend.progress(behind_id) == ({"xp": 5000, "level": 6, "sessions": 4}, 2)
    assert backend.progress(ahead_id) == ({"xp": 10, "level": 1, "sessions": 1}, 2)
    assert sim.log().count("version conflict") == 2
    sim.terminate()
    assert sim.wait(10) == 0
