"""An Agones fleet's definition is checked like the rest of a fleet's."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from homeport.fleet.spec import FleetSpec

CLUSTER = {"fleet": "arena-fleet"}


def spec(**fields: Any) -> FleetSpec:
    return FleetSpec.model_validate(fields)


def test_defaults_leave_sizing_to_a_fleet_autoscaler_in_the_default_namespace() -> None:
    agones = spec(provider="agones", agones=CLUSTER).agones
    assert agones is not None
    assert (agones.namespace, agones.scaling, agones.scheduling) == (
        "default",
        "autoscaler",
        "Packed",
    )
    assert agones.kubeconfig is None, "in-cluster service account unless told"


@pytest.mark.parametrize(
    "fields",
    [
        {"provider": "agones"},
        {"agones": CLUSTER},
        {"provider": "agones", "agones": {}},
        {"provider": "agones", "agones": {"fleet": "Not_A_Name"}},
        {"provider": "agones", "agones": {**CLUSTER, "namespace": "bad namespace"}},
        {"provider": "agones", "agones": {**CLUSTER, "scaling": "both"}},
        {"provider": "agones", "agones": {**CLUSTER, "scheduling": "Random"}},
        {"provider": "agones", "agones": {**CLUSTER, "match_labels": {"bad key!": "x"}}},
        {"provider": "agones", "agones": {**CLUSTER, "match_labels": {"tier": "no spaces"}}},
        {"provider": "agones", "agones": {**CLUSTER, "replicas": 3}},
        {"provider": "kubernetes"},
    ],
)
def test_incoherent_agones_definitions_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        spec(**fields)
