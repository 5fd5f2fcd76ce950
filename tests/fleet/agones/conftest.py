"""An app whose fleet `arena` is an Agones Fleet on a fake Kubernetes API server, reached
through a kubeconfig file with a bearer token, as a studio would configure it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from homeport.db.session import unit_of_work
from homeport.fleet import service
from homeport.fleet.spec import FleetSpec
from homeport.identity.server_keys import KeyKind
from homeport.settings import Settings
from homeport.state import AppState
from tests.factories import make_key
from tests.fleet.agones.fake_kube import FakeKube

AGONES_FLEET = "arena-fleet"


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    fake = FakeKube().start()
    fake.add_fleet(AGONES_FLEET, replicas=0)
    yield fake
    fake.stop()


@pytest.fixture
def kubeconfig(kube: FakeKube, tmp_path: Path) -> Path:
    return kube.kubeconfig(tmp_path / "kubeconfig.yaml")


def agones_fleet(kubeconfig: Path, **agones: Any) -> FleetSpec:
    scaling = agones.pop("policy", {"buffer": 2, "max_servers": 10})
    return FleetSpec.model_validate(
        {
            "provider": "agones",
            "region": "eu",
            "version": "1.4",
            "labels": {"mode": "duel"},
            "scaling": scaling,
            "agones": {"fleet": AGONES_FLEET, "kubeconfig": str(kubeconfig), **agones},
        }
    )


@pytest.fixture
def fleet_spec(kubeconfig: Path) -> FleetSpec:
    return agones_fleet(kubeconfig)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], fleet_spec: FleetSpec) -> Settings:
    return make_settings(fleets={"arena": fleet_spec}, fleet_allocation_timeout=5)


@pytest.fixture
async def admin(state: AppState) -> str:
    """An admin key, with the fleets of the settings stored as `homeport serve` stores them."""
    async with unit_of_work(state.sessions) as session:
        await service.sync_configured(session, state.clock, state.settings)
    return await make_key(state, kind=KeyKind.ADMIN)
