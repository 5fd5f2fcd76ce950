"""When the cluster will not serve Homeport: a problem+json that says why, never a 500."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from homeport.fleet.spec import FleetSpec
from homeport.settings import Settings
from tests.factories import bearer, problem_type
from tests.fleet.agones.conftest import AGONES_FLEET, agones_fleet
from tests.fleet.agones.fake_kube import FakeKube


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def fleet_spec(request: pytest.FixtureRequest, kube: FakeKube, tmp_path: Path) -> FleetSpec:
    """The kubeconfig each test's name asks for."""
    path = tmp_path / "kubeconfig.yaml"
    if "wrong_token" in request.node.name:
        kube.kubeconfig(path, token="revoked-token")
    elif "unreachable" in request.node.name:
        kube.kubeconfig(path, server=f"http://127.0.0.1:{_closed_port()}")
    elif "missing_kubeconfig" in request.node.name:
        path = tmp_path / "nowhere.yaml"
    else:
        kube.kubeconfig(path)
    return agones_fleet(path)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], fleet_spec: FleetSpec) -> Settings:
    return make_settings(fleets={"arena": fleet_spec}, fleet_allocation_timeout=5)


async def test_wrong_token_is_refused_with_cluster_access_denied(
    kube: FakeKube, client: httpx.AsyncClient, admin: str
) -> None:
    kube.add_game_server(AGONES_FLEET)
    answer = await client.post("/v1/fleets/arena/allocate", json={"wait": 0}, headers=bearer(admin))
    assert answer.status_code == 503, answer.text
    assert problem_type(answer) == "cluster-access-denied"
    assert answer.json()["kubernetes_status"] == 401
    assert kube.states() == {"arena-fleet-00000": "Ready"}
    listing = await client.get("/v1/fleets/arena/servers", headers=bearer(admin))
    assert listing.status_code == 503
    assert problem_type(listing) == "cluster-access-denied"


async def test_rbac_refusal_is_cluster_access_denied(
    kube: FakeKube, client: httpx.AsyncClient, admin: str
) -> None:
    kube.add_game_server(AGONES_FLEET)
    kube.forbidden.add("gsa")
    answer = await client.post("/v1/fleets/arena/allocate", json={"wait": 0}, headers=bearer(admin))
    assert answer.status_code == 503, answer.text
    assert problem_type(answer) == "cluster-access-denied"
    assert answer.json()["kubernetes_status"] == 403
    assert kube.states() == {"arena-fleet-00000": "Ready"}


async def test_unreachable_cluster_is_a_503_to_retry(client: httpx.AsyncClient, admin: str) -> None:
    answer = await client.post("/v1/fleets/arena/allocate", json={"wait": 0}, headers=bearer(admin))
    assert answer.status_code == 503, answer.text
    assert problem_type(answer) == "cluster-unreachable"
    assert answer.headers["retry-after"] == "5"


async def test_missing_kubeconfig_says_so(client: httpx.AsyncClient, admin: str) -> None:
    answer = await client.post("/v1/fleets/arena/allocate", json={"wait": 0}, headers=bearer(admin))
    assert answer.status_code == 503, answer.text
    assert problem_type(answer) == "cluster-config-invalid"


async def test_a_cluster_without_agones_is_a_refusal_not_a_crash(
    kube: FakeKube, client: httpx.AsyncClient, admin: str
) -> None:
    kube.uninstalled.add("gsa")
    answer = await client.post("/v1/fleets/arena/allocate", json={"wait": 0}, headers=bearer(admin))
    assert answer.status_code == 503, answer.text
    assert problem_type(answer) == "cluster-refused"
    assert answer.json()["kubernetes_status"] == 404


async def test_a_proxy_error_page_is_a_refusal_not_a_crash(
    kube: FakeKube, client: httpx.AsyncClient, admin: str
) -> None:
    kube.garbled.update({"gsa", "list_gs"})
    answer = await client.post("/v1/fleets/arena/allocate", json={"wait": 0}, headers=bearer(admin))
    assert answer.status_code == 503, answer.text
    assert problem_type(answer) == "cluster-refused"
    listing = await client.get("/v1/fleets/arena/servers", headers=bearer(admin))
    assert listing.status_code == 503, listing.text
    assert problem_type(listing) == "cluster-refused"
