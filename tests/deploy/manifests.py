"""Reading deploy/: its YAML documents, the Homeport containers in them and the names they use."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from homeport.settings import CONFIG_ENV, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
AGONES = DEPLOY / "agones"
AGONES_CRDS = ROOT.parent / "shared" / "agones" / "crds.yaml"
"""Agones' CRDs as the project keeps them beside the repository (not part of it)."""
KUBERNETES_VERSION = "1.33.0"
"""The Kubernetes release whose schemas the manifests are validated against."""
KUSTOMIZE_KIND = "Kustomization"
HOMEPORT_IMAGE = "homeport"
ENV_NAME = re.compile(r"HOMEPORT_[A-Z0-9_]+")

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Document:
    path: Path
    body: Manifest

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}: {self.kind}/{self.name}"


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def documents(directory: Path = DEPLOY) -> list[Document]:
    found = []
    for path in yaml_files():
        if directory not in path.parents:
            continue
        for body in yaml.safe_load_all(path.read_text()):
            if body:  # a file may end with `---` or hold comments only
                found.append(Document(path, body))
    return found


def resources(directory: Path = DEPLOY) -> list[Document]:
    """The documents that are Kubernetes objects (not kustomize's own files)."""
    return [d for d in documents(directory) if d.kind != KUSTOMIZE_KIND]


def one(kind: str, name: str, directory: Path = DEPLOY) -> Document:
    matches = [d for d in resources(directory) if d.kind == kind and d.name == name]
    assert len(matches) == 1, f"expected one {kind}/{name} in {directory}, found {len(matches)}"
    return matches[0]


def pod_spec(doc: Document) -> Manifest:
    """The pod template's spec of a workload (Deployment, Job, Agones Fleet)."""
    spec = doc.body["spec"]["template"]["spec"]
    if doc.kind == "Fleet":  # a GameServer template, which holds the pod template
        spec = spec["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def containers(doc: Document, *, init: bool = True) -> Iterator[Manifest]:
    spec = pod_spec(doc)
    yield from spec.get("initContainers", []) if init else []
    yield from spec["containers"]


def homeport_workloads() -> list[Document]:
    """Workloads whose containers run Homeport's image."""
    return [
        d
        for d in resources(KUBERNETES)
        if d.kind in ("Deployment", "Job")
        and any(image_name(c["image"]) == HOMEPORT_IMAGE for c in containers(d))
    ]


def image_name(image: str) -> str:
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def setting_names() -> set[str]:
    """Every variable Homeport reads: one per settings field, and the config file's."""
    return {f"HOMEPORT_{field.upper()}" for field in Settings.model_fields} | {CONFIG_ENV}


def container_env(doc: Document, container: Manifest) -> dict[str, str]:
    """The environment a container gets from this repository's ConfigMaps and Secrets (those
    it names and deploy/ defines) and its own `env` values, as Kubernetes would assemble it."""
    env: dict[str, str] = {}
    directory = doc.path.parent
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(one("ConfigMap", source["configMapRef"]["name"], directory).body["data"])
        if "secretRef" in source:
            secret = one("Secret", source["secretRef"]["name"], directory).body
            env.update(secret.get("stringData", {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
    return env


def env_names(container: Manifest) -> set[str]:
    """Names set in a container's own `env` (values and references alike)."""
    return {item["name"] for item in container.get("env", [])}
