"""Every document in deploy/ is valid for a pinned Kubernetes release, checked offline.

Kubernetes' own kinds are checked by kubernetes-validate, which carries the schemas of each
release in its package, in strict mode (unknown fields are errors, as `kubectl apply` makes
them). Agones' kinds are checked against the openAPIV3Schema of Agones' CRDs, made strict the
same way. No test here may touch the network: `offline` makes any attempt an error.
"""

from __future__ import annotations

import copy
import socket
from functools import cache
from typing import Any, NoReturn

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.manifests import (
    AGONES,
    AGONES_CRDS,
    KUBERNETES,
    KUBERNETES_VERSION,
    Document,
    Manifest,
    one,
    resources,
)

AGONES_GROUPS = ("agones.dev/", "autoscaling.agones.dev/", "multicluster.agones.dev/")
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
# Fields every object has, which the API server checks itself and CRD schemas leave out.
OBJECT_FIELDS = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
            "namespace": {"type": "string"},
            "labels": _STRINGS,
            "annotations": _STRINGS,
        },
    },
}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError(f"a schema check tried to use the network: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def is_agones(doc: Document) -> bool:
    return str(doc.body["apiVersion"]).startswith(AGONES_GROUPS)


def kubernetes_documents() -> list[Document]:
    return [d for d in resources() if not is_agones(d)]


def validate_kubernetes(body: Manifest) -> None:
    kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("doc", kubernetes_documents(), ids=str)
def test_kubernetes_resource_is_valid_for_the_pinned_release(doc: Document) -> None:
    validate_kubernetes(doc.body)


def test_a_kind_without_a_schema_is_an_error_not_a_pass() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate_kubernetes(unknown)


def test_strict_validation_refuses_a_misspelt_field() -> None:
    broken = copy.deepcopy(one("Deployment", "homeport", KUBERNETES).body)
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        validate_kubernetes(broken)


def test_validation_refuses_a_wrong_type() -> None:
    broken = copy.deepcopy(one("Service", "homeport", KUBERNETES).body)
    broken["spec"]["ports"][0]["port"] = "eighty"
    with pytest.raises(kubernetes_validate.ValidationError, match="eighty"):
        validate_kubernetes(broken)


# Agones


def _strict(schema: Any) -> None:
    """Unknown fields become errors wherever the schema lists the fields (kubectl's strict
    field validation); objects that keep unknown fields stay open."""
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for item in schema:
            _strict(item)


@cache
def crd_schemas() -> dict[tuple[str, str], Manifest]:
    """(apiVersion, kind) -> the strict schema of that version of an Agones CRD."""
    found: dict[tuple[str, str], Manifest] = {}
    for crd in yaml.safe_load_all(AGONES_CRDS.read_text()):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec["versions"]:
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            _strict(schema)
            schema["properties"] = {**schema["properties"], **OBJECT_FIELDS}
            found[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return found


@pytest.fixture
def agones_crds() -> dict[tuple[str, str], Manifest]:
    if not AGONES_CRDS.is_file():
        pytest.skip(f"Agones CRDs not found at {AGONES_CRDS}: Agones kinds are not validated")
    return crd_schemas()


def validate_agones(body: Manifest, schemas: dict[tuple[str, str], Manifest]) -> None:
    key = (body["apiVersion"], body["kind"])
    assert key in schemas, f"no Agones CRD defines {key}"
    jsonschema.Draft7Validator(schemas[key]).validate(body)


@pytest.mark.parametrize("doc", [d for d in resources(AGONES) if is_agones(d)], ids=str)
def test_agones_resource_is_valid_for_its_crd(
    doc: Document, agones_crds: dict[tuple[str, str], Manifest]
) -> None:
    validate_agones(doc.body, agones_crds)


def test_agones_check_refuses_a_misspelt_field(
    agones_crds: dict[tuple[str, str], Manifest],
) -> None:
    broken = copy.deepcopy(one("Fleet", "godot-demo", AGONES).body)
    health = broken["spec"]["template"]["spec"]["health"]
    health["periodSecond"] = health.pop("periodSeconds")
    with pytest.raises(jsonschema.ValidationError, match="periodSecond"):
        validate_agones(broken, agones_crds)


def test_agones_check_refuses_a_wrong_port_policy(
    agones_crds: dict[tuple[str, str], Manifest],
) -> None:
    broken = copy.deepcopy(one("Fleet", "godot-demo", AGONES).body)
    broken["spec"]["template"]["spec"]["ports"][0]["protocol"] = "QUIC"
    with pytest.raises(jsonschema.ValidationError, match="QUIC"):
        validate_agones(broken, agones_crds)


def test_game_server_pod_template_is_a_valid_pod_template() -> None:
    """The pod inside the Fleet, checked by Kubernetes' own PodTemplate schema as well."""
    fleet = one("Fleet", "godot-demo", AGONES).body
    validate_kubernetes(
        {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "godot-demo"},
            "template": fleet["spec"]["template"]["spec"]["template"],
        }
    )
