"""The reference server under Agones, against a stand-in SDK sidecar speaking the SDK's REST
wire format: health pings, `/ready` once registered, the match from the GameServer's
annotations, a Shutdown honoured like SIGTERM, and `/shutdown` after every graceful stop."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.agones.sidecar import FakeSidecar
from tests.sim.conftest import Backend, Sim, wait_for

pytestmark = pytest.mark.e2e

StartSim = Callable[..., Sim]
HOST_PORT = 27777
"""The port Agones mapped to the container's on its node: what players are given."""


@pytest.fixture
def sidecar() -> Iterator[FakeSidecar]:
    fake = FakeSidecar(game_port=HOST_PORT).start()
    yield fake
    fake.stop()


async def test_it_gets_ready_when_registered_takes_the_match_and_obeys_shutdown(
    backend: Backend, start_sim: StartSim, sidecar: FakeSidecar
) -> None:
    sim = start_sim("--linger", "60", AGONES_SDK_HTTP_PORT=str(sidecar.port))
    listed = sim.wait_listed(state="ready")
    assert (listed["address"], listed["port"]) == ("127.0.0.1", HOST_PORT), "the GameServer's"
    sidecar.wait_for("POST", "/ready")
    sidecar.wait_for("POST", "/health", times=2)
    assert sidecar.snapshot()[1]["status"]["state"] == "Ready"
    log = sim.log()
    assert log.index("registered as") < log.index("Agones: ready"), log

    player_id, _ = backend.new_player()
    sidecar.change(
        "Allocated",
        annotations={
            "homeport.dev/allocation-id": "alloc-1",
            "homeport.dev/match-id": "match-1",
            "homeport.dev/players": player_id,
        },
    )
    sim.wait_listed(state="in_match")
    assert f"allocated: allocation alloc-1, match match-1, 1 players expected: {player_id}" in (
        sim.log()
    )

    sidecar.change("Shutdown")
    assert sim.wait(15) == 0, sim.log()
    assert sidecar.count("POST", "/shutdown") == 1
    assert backend.listed(sim.name) is None, "deregistered on the way out"


async def test_sigterm_stops_it_gracefully_and_ends_with_shutdown(
    backend: Backend, start_sim: StartSim, sidecar: FakeSidecar
) -> None:
    sim = start_sim(AGONES_SDK_HTTP_PORT=str(sidecar.port))
    sim.wait_listed(state="ready")
    sidecar.wait_for("POST", "/ready")
    sim.terminate()
    assert sim.wait(15) == 0, sim.log()
    calls = [path for _, path, _ in sidecar.calls]
    assert calls.count("/shutdown") == 1
    assert "/ready" in calls[: calls.index("/shutdown")]


async def test_an_allocation_by_someone_else_is_no_match(
    backend: Backend, start_sim: StartSim, sidecar: FakeSidecar
) -> None:
    """Allocated without Homeport's annotations (by `kubectl create` of an allocation, say):
    the server stays as it was, with no match to wait for."""
    sim = start_sim(AGONES_SDK_HTTP_PORT=str(sidecar.port))
    sim.wait_listed(state="ready")
    sidecar.wait_for("POST", "/ready")
    sidecar.change("Allocated")
    wait_for(lambda: sidecar.count("POST", "/health") >= 3, what="more health pings")
    assert "allocated:" not in sim.log()
    sim.terminate()
    assert sim.wait(15) == 0, sim.log()
