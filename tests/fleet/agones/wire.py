"""Agones' wire format for the fake Kubernetes API: the CRD schemas (from `../shared/agones/
crds.yaml`, the files Agones installs), the GameServerAllocation's shape (it has no CRD: the
Agones extension API server serves it, see `example-gameserverallocation.yaml`), Kubernetes
`Status` errors, and builders for GameServers and Fleets shaped like Agones' own."""

from __future__ import annotations

import copy
import functools
import itertools
import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "agones"
CRDS = SHARED / "crds.yaml"
MISSING = f"the Agones reference CRDs are not at {CRDS} (shared/agones beside the project)"

_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": _LABELS,
        "matchExpressions": {"type": "array"},
        "gameServerState": {"enum": ["Ready", "Allocated"]},
        "players": {"type": "object"},
        "counters": {"type": "object"},
        "lists": {"type": "object"},
    },
}
GAME_SERVER_ALLOCATION = {
    "type": "object",
    "required": ["apiVersion", "kind", "spec"],
    "properties": {
        "apiVersion": {"const": "allocation.agones.dev/v1"},
        "kind": {"const": "GameServerAllocation"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "multiClusterSetting": {"type": "object"},
                "required": _SELECTOR,
                "preferred": {"type": "array", "items": _SELECTOR},
                "selectors": {"type": "array", "items": _SELECTOR},
                "priorities": {"type": "array"},
                "scheduling": {"enum": ["Packed", "Distributed"]},
                "metadata": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"labels": _LABELS, "annotations": _LABELS},
                },
                "counters": {"type": "object"},
                "lists": {"type": "object"},
            },
        },
    },
}
"""`allocation.agones.dev/v1` GameServerAllocation as Agones decodes it. Stricter than Agones
in one way: a field it does not know is refused here, where Agones would drop it silently."""

_uid = itertools.count(1)


@functools.cache
def crd_schemas() -> dict[str, dict[str, Any]] | None:
    """openAPIV3Schema by kind (GameServer, Fleet, ...), or None when the file is missing."""
    if not CRDS.is_file():
        return None
    schemas = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for doc in yaml.load_all(CRDS.read_text(), Loader=loader):
        if doc and doc.get("kind") == "CustomResourceDefinition":
            version = doc["spec"]["versions"][0]
            schemas[doc["spec"]["names"]["kind"]] = _draft7(version["schema"]["openAPIV3Schema"])
    return schemas


def _draft7(schema: Any) -> Any:
    """OpenAPI v3's `nullable: true` as JSON Schema says it: null is one of the types."""
    if isinstance(schema, list):
        return [_draft7(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: _draft7(value) for key, value in schema.items()}
    if result.get("nullable") is True and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    return result


def problems(schema: dict[str, Any], document: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, message) for every way the document breaks the schema."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    return [
        (".".join(str(p) for p in error.absolute_path), error.message)
        for error in validator.iter_errors(_without_nulls(document))
    ]


def _without_nulls(document: Any) -> Any:
    """What the API server validates: it prunes (or defaults) a null given for a field whose
    schema is not nullable, and a null of a nullable one is valid either way."""
    if isinstance(document, dict):
        return {k: _without_nulls(v) for k, v in document.items() if v is not None}
    if isinstance(document, list):
        return [_without_nulls(item) for item in document]
    return document


@functools.cache
def _validator(schema: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(schema))


def status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    """A Kubernetes `Status` (meta/v1), what the API server answers on every failure."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def meta(name: str, namespace: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "uid": f"00000000-0000-4000-8000-{next(_uid):012d}",
        "resourceVersion": "1",
        "generation": 1,
        "creationTimestamp": now(),
        **fields,
    }


def fleet(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    """A Fleet like `example-fleet.yaml`, with the status Agones' controller keeps."""
    return {
        "apiVersion": "agones.dev/v1",
        "kind": "Fleet",
        "metadata": meta(name, namespace),
        "spec": {
            "replicas": replicas,
            "scheduling": "Packed",
            "strategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"game": "homeport"}},
                "spec": {
                    "ports": [{"name": "default", "portPolicy": "Dynamic", "containerPort": 7777}],
                    "template": {"spec": {"containers": [{"name": "godot", "image": "game:1.0"}]}},
                },
            },
        },
        "status": {"replicas": 0, "readyReplicas": 0, "allocatedReplicas": 0},
    }


def game_server(
    name: str,
    namespace: str,
    fleet_name: str,
    *,
    state: str,
    port: int,
    address: str = "203.0.113.20",
    node: str = "node-a",
    labels: dict[str, str] | None = None,
    players: int | None = None,
) -> dict[str, Any]:
    """A GameServer of a Fleet as Agones' controllers leave it once its pod runs."""
    status: dict[str, Any] = {
        "state": state,
        "address": address,
        "addresses": [{"type": "InternalIP", "address": address}],
        "nodeName": node,
        "ports": [{"name": "default", "port": port}],
    }
    if players is not None:
        status["players"] = {"count": players, "capacity": 16, "ids": []}
    return {
        "apiVersion": "agones.dev/v1",
        "kind": "GameServer",
        "metadata": meta(
            name,
            namespace,
            labels={
                "agones.dev/fleet": fleet_name,
                "agones.dev/gameserverset": f"{fleet_name}-set",
                **(labels or {}),
            },
            annotations={},
        ),
        "spec": {
            "container": "godot",
            "ports": [
                {
                    "name": "default",
                    "portPolicy": "Dynamic",
                    "containerPort": 7777,
                    "hostPort": port,
                    "protocol": "UDP",
                }
            ],
            "health": {"periodSeconds": 5, "failureThreshold": 3, "initialDelaySeconds": 5},
            "scheduling": "Packed",
            "sdkServer": {"logLevel": "Info", "grpcPort": 9357, "httpPort": 9358},
            "template": {"spec": {"containers": [{"name": "godot", "image": "game:1.0"}]}},
        },
        "status": status,
    }


def merge(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def selected(labels: dict[str, str], selector: str) -> bool:
    """A label selector of equalities (`k=v`, `k==v`, `k!=v`) and existence tests (`k`)."""
    for term in filter(None, selector.split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True
