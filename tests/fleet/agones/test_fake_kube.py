"""The fake Kubernetes API is only worth its tests if it speaks Agones' real wire format: its
objects and checks are held against the reference CRDs and example manifests Agones ships."""

from __future__ import annotations

import httpx
import pytest
import yaml

from tests.fleet.agones import wire
from tests.fleet.agones.fake_kube import TOKEN, FakeKube

pytestmark = pytest.mark.skipif(not wire.CRDS.is_file(), reason=wire.MISSING)


def example(name: str) -> dict[str, object]:
    docs = [d for d in yaml.safe_load_all((wire.SHARED / name).read_text()) if d]
    document: dict[str, object] = docs[0]
    return document


def test_the_fakes_objects_and_agones_examples_satisfy_the_crds() -> None:
    schemas = wire.crd_schemas()
    assert schemas is not None
    made = wire.game_server("gs-1", "default", "f", state="Allocated", port=7000, players=2)
    assert wire.problems(schemas["GameServer"], made) == []
    assert wire.problems(schemas["Fleet"], wire.fleet("f", "default", 3)) == []
    assert wire.problems(schemas["Fleet"], example("example-fleet.yaml")) == []
    assert wire.problems(schemas["GameServer"], example("example-gameserver.yaml")) == []
    broken = {**made, "status": {**made["status"], "state": "Running"}}  # not an Agones state
    assert wire.problems(schemas["GameServer"], broken) != []


def test_agones_own_allocation_example_is_accepted_and_a_typo_is_not() -> None:
    allocation = example("example-gameserverallocation.yaml")
    assert wire.problems(wire.GAME_SERVER_ALLOCATION, allocation) == []
    typo = {**allocation, "spec": {"selector": [{"matchLabels": {"a": "b"}}]}}
    assert wire.problems(wire.GAME_SERVER_ALLOCATION, typo) != []


def test_errors_are_kubernetes_status_objects() -> None:
    kube = FakeKube().start()
    kube.add_fleet("f")
    try:
        base = f"{kube.url}/apis/agones.dev/v1/namespaces/default/fleets"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(timeout=5) as http:
            anonymous = http.get(f"{base}/f")
            missing = http.get(f"{base}/nope", headers=auth)
            wrong_patch = http.patch(f"{base}/f/scale", json={"spec": {}}, headers=auth)
            negative = http.patch(
                f"{base}/f/scale",
                content=b'{"spec": {"replicas": -1}}',
                headers={**auth, "Content-Type": "application/merge-patch+json"},
            )
        for answer, code, reason in (
            (anonymous, 401, "Unauthorized"),
            (missing, 404, "NotFound"),
            (wrong_patch, 415, "UnsupportedMediaType"),
            (negative, 422, "Invalid"),
        ):
            assert answer.status_code == code
            body = answer.json()
            assert (body["kind"], body["apiVersion"], body["status"]) == ("Status", "v1", "Failure")
            assert (body["code"], body["reason"]) == (code, reason)
    finally:
        kube.stop()
