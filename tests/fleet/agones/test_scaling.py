"""Who sizes an Agones Fleet: in `replicas` mode the fleet agent patches the Fleet's scale
subresource to the fleet's policy; in `autoscaler` mode (the default) it never writes it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from homeport.clock import FakeClock
from homeport.fleet.agent import FleetAgent
from homeport.fleet.spec import FleetSpec
from homeport.settings import Settings
from homeport.state import AppState
from tests.fleet.agones.conftest import AGONES_FLEET, agones_fleet
from tests.fleet.agones.fake_kube import MERGE_PATCH, FakeKube


@pytest.fixture
def fleet_spec(request: pytest.FixtureRequest, kubeconfig: Path) -> FleetSpec:
    mode = "autoscaler" if "autoscaler" in request.node.name else "replicas"
    return agones_fleet(
        kubeconfig, scaling=mode, policy={"buffer": 2, "min_ready": 1, "max_servers": 5}
    )


@pytest.fixture
async def agent(settings: Settings, clock: FakeClock, admin: str) -> AsyncIterator[FleetAgent]:
    running = FleetAgent(settings, clock)
    yield running
    await running.close()


def fleet_replicas(kube: FakeKube) -> int:
    replicas: int = kube.fleets[("default", AGONES_FLEET)]["spec"]["replicas"]
    return replicas


async def test_replicas_mode_patches_the_fleet_scale_to_in_use_plus_buffer(
    kube: FakeKube, agent: FleetAgent
) -> None:
    kube.add_game_server(AGONES_FLEET, state="Allocated")
    kube.add_game_server(AGONES_FLEET, state="Ready", players=4)
    kube.add_game_server(AGONES_FLEET, state="Ready")
    await agent.reconcile()
    (patch,) = kube.of("scale")
    assert patch.path == f"/apis/agones.dev/v1/namespaces/default/fleets/{AGONES_FLEET}/scale"
    assert (patch.content_type, patch.body) == (MERGE_PATCH, {"spec": {"replicas": 4}})
    assert fleet_replicas(kube) == 4

    await agent.reconcile()
    assert len(kube.of("scale")) == 1, "no patch when the Fleet already has the size"

    for _ in range(4):
        kube.add_game_server(AGONES_FLEET, state="Allocated")
    await agent.reconcile()
    assert fleet_replicas(kube) == 5, "never beyond max_servers"


async def test_replicas_mode_scales_an_idle_fleet_down_after_the_delay(
    kube: FakeKube, agent: FleetAgent, clock: FakeClock, state: AppState
) -> None:
    assert state.settings.fleets["arena"].scaling.scale_down_delay == 60
    kube.add_fleet(AGONES_FLEET, replicas=8)
    await agent.reconcile()
    clock.advance(59)
    await agent.reconcile()
    assert fleet_replicas(kube) == 8, "not before it has wanted fewer for scale_down_delay"
    clock.advance(1)
    await agent.reconcile()
    assert fleet_replicas(kube) == 2, "buffer 2 over nothing in use"


async def test_a_lull_shorter_than_the_delay_keeps_the_servers(
    kube: FakeKube, agent: FleetAgent, clock: FakeClock
) -> None:
    kube.add_fleet(AGONES_FLEET, replicas=5)
    busy = [kube.add_game_server(AGONES_FLEET, state="Allocated") for _ in range(3)]
    await agent.reconcile()
    assert fleet_replicas(kube) == 5, "3 in use + buffer 2"
    for server in busy:  # the wave's matches end
        kube.game_servers.pop(("default", server["metadata"]["name"]))
    await agent.reconcile()
    clock.advance(50)
    wave = [kube.add_game_server(AGONES_FLEET, state="Allocated") for _ in range(3)]
    await agent.reconcile()  # the next wave came within the delay
    for server in wave:
        kube.game_servers.pop(("default", server["metadata"]["name"]))
    clock.advance(10)
    await agent.reconcile()  # a new lull: its own delay, not the first one's
    clock.advance(50)
    await agent.reconcile()
    assert kube.of("scale") == [], "no lull lasted scale_down_delay"
    clock.advance(10)
    await agent.reconcile()
    assert fleet_replicas(kube) == 2


async def test_autoscaler_mode_never_writes_the_fleet(kube: FakeKube, agent: FleetAgent) -> None:
    kube.add_game_server(AGONES_FLEET, state="Allocated")
    await agent.reconcile()
    await agent.reconcile()
    assert kube.of("scale") == []
    assert kube.of("patch_fleet") == []
    assert fleet_replicas(kube) == 0


async def test_a_cluster_that_refuses_costs_the_pass_nothing(
    kube: FakeKube, agent: FleetAgent
) -> None:
    kube.forbidden.add("scale")
    kube.add_game_server(AGONES_FLEET, state="Allocated")
    await agent.reconcile()
    assert fleet_replicas(kube) == 0
    kube.forbidden.clear()
    await agent.reconcile()
    assert fleet_replicas(kube) == 3
