"""Cross-checks that a schema cannot make: the manifests agree with the code and with each
other, so a renamed setting, route, command or label breaks this suite, not a rollout."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml

from homeport.cli import SHUTDOWN_GRACE_SECONDS
from homeport.health import READY_TIMEOUT
from homeport.settings import Settings
from tests.deploy.cli import parse
from tests.deploy.manifests import (
    AGONES,
    ENV_NAME,
    KUBERNETES,
    Document,
    Manifest,
    container_env,
    containers,
    homeport_workloads,
    image_name,
    one,
    pod_spec,
    resources,
    setting_names,
    yaml_files,
)

# Applied on their own, not by `kubectl apply -k` (docs/operations.md says when).
STAND_ALONE = {"secret.example.yaml", "migrate-job.yaml", "hpa.yaml"}


def deployment() -> Document:
    return one("Deployment", "homeport", KUBERNETES)


def homeport_container(doc: Document) -> Manifest:
    found = [c for c in containers(doc, init=False) if image_name(c["image"]) == "homeport"]
    assert len(found) == 1
    return found[0]


def test_every_homeport_variable_in_the_kubernetes_files_is_a_setting() -> None:
    used: set[str] = set()
    for path in yaml_files():
        if KUBERNETES in path.parents:
            used |= set(ENV_NAME.findall(path.read_text()))
    assert used, "the manifests set no HOMEPORT_* variable at all"
    assert used - setting_names() == set()


@pytest.mark.parametrize("doc", homeport_workloads(), ids=str)
def test_homeport_containers_get_settings_that_load(
    doc: Document, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment the ConfigMap and Secret give is accepted by Settings as it is."""
    env = container_env(doc, homeport_container(doc))
    assert set(env) <= setting_names()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The example Secret's placeholder for the dashboard's secret is refused on purpose.
    with pytest.raises(ValueError, match="dashboard_secret"):
        Settings()
    monkeypatch.setenv("HOMEPORT_DASHBOARD_SECRET", "0123456789abcdef" * 4)
    settings = Settings()
    assert settings.db_url is not None
    assert not settings.is_sqlite
    assert settings.fleet_enabled is False  # the agent would start game servers in the pod
    assert settings.worlds_storage == "s3"  # every replica must see the same worlds


@pytest.mark.parametrize("doc", homeport_workloads(), ids=str)
def test_commands_are_real_cli_commands(doc: Document) -> None:
    commands = {parse(c["command"]) for c in containers(doc, init=False)}
    assert commands == {("serve",)} if doc.kind == "Deployment" else {("migrate",)}


def test_the_job_migrates_with_the_release_the_deployment_runs() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    (image,) = [i for i in kustomization["images"] if i["name"] == "homeport"]
    release = f"homeport:{image['newTag']}"
    job = one("Job", "homeport-migrate", KUBERNETES)
    assert homeport_container(job)["image"] == release
    # Also without kustomize (`kubectl apply -f`), never an untagged `latest`.
    assert {c["image"] for c in containers(deployment())} == {release}


def test_probes_and_service_use_the_served_port() -> None:
    container = homeport_container(deployment())
    (port,) = container["ports"]
    argv = container["command"]
    assert argv[argv.index("--port") + 1] == str(port["containerPort"])
    env = container_env(deployment(), container)
    assert env["HOMEPORT_PORT"] == str(port["containerPort"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    (service_port,) = one("Service", "homeport", KUBERNETES).body["spec"]["ports"]
    assert service_port["targetPort"] in (port["name"], port["containerPort"])


def probe_paths() -> set[str]:
    container = homeport_container(deployment())
    return {container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}


async def test_probe_paths_are_answered_by_the_app(client: httpx.AsyncClient) -> None:
    assert probe_paths() == {"/healthz", "/readyz"}
    for path in sorted(probe_paths()):
        answer = await client.get(path)
        assert answer.status_code == 200, path


def test_selectors_match_the_pods() -> None:
    deploy = deployment().body
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deploy["spec"]["selector"]["matchLabels"],
        "Service": one("Service", "homeport", KUBERNETES).body["spec"]["selector"],
        "PodDisruptionBudget": one("PodDisruptionBudget", "homeport", KUBERNETES).body["spec"][
            "selector"
        ]["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert selector.items() <= pod_labels.items(), kind
    spread = deploy["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
    assert spread["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    job_labels = one("Job", "homeport-migrate", KUBERNETES).body["spec"]["template"]["metadata"]
    assert not selectors["Service"].items() <= job_labels["labels"].items()
    target = one("HorizontalPodAutoscaler", "homeport", KUBERNETES).body["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "homeport")


@pytest.mark.parametrize("doc", homeport_workloads(), ids=str)
def test_pods_run_locked_down(doc: Document) -> None:
    spec = pod_spec(doc)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] > 0
    for container in containers(doc):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "memory" in container["resources"]["limits"]


def test_writable_places_are_volumes() -> None:
    """With a read-only root, the data directory (keys, the world-chunk spool) and /tmp must
    be mounted volumes."""
    doc = deployment()
    container = homeport_container(doc)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(doc)["volumes"]}
    data_dir = container_env(doc, container)["HOMEPORT_DATA_DIR"]
    for path in (data_dir, "/tmp"):
        assert "emptyDir" in volumes[mounts[path]], path


def test_the_signing_keys_are_copied_where_homeport_reads_them() -> None:
    doc = deployment()
    env = container_env(doc, homeport_container(doc))
    key_file = Settings(data_dir=Path(env["HOMEPORT_DATA_DIR"])).keys_dir / "signing.json"
    (init,) = pod_spec(doc)["initContainers"]
    script = " ".join(init["command"])
    volumes = {v["name"]: v for v in pod_spec(doc)["volumes"]}
    secret_mounts = [m for m in init["volumeMounts"] if "secret" in volumes[m["name"]]]
    (mount,) = secret_mounts
    (item,) = volumes[mount["name"]]["secret"]["items"]
    source = f"{mount['mountPath']}/{item['path']}"
    assert re.search(rf"{re.escape(source)}\s+{re.escape(str(key_file))}\b", script), script
    secret = one("Secret", volumes[mount["name"]]["secret"]["secretName"], KUBERNETES).body
    assert item["key"] in secret["stringData"]
    data_mount = {m["mountPath"] for m in init["volumeMounts"]}
    assert env["HOMEPORT_DATA_DIR"] in data_mount


def test_kustomizations_name_every_file_once() -> None:
    for directory in (KUBERNETES, AGONES):
        listed = yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
        files = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
        assert len(listed) == len(set(listed))
        assert set(listed) <= files
        assert files - set(listed) <= STAND_ALONE, directory


def test_the_service_account_is_the_one_the_agones_role_is_bound_to() -> None:
    account = one("ServiceAccount", "homeport", KUBERNETES).name
    assert pod_spec(deployment())["serviceAccountName"] == account
    binding = one("RoleBinding", "homeport-agones", AGONES).body
    assert [s["name"] for s in binding["subjects"]] == [account]
    assert binding["roleRef"]["name"] == one("Role", "homeport-agones", AGONES).name


def test_the_agones_role_grants_what_homeport_calls() -> None:
    granted = {
        (group, resource, verb)
        for rule in one("Role", "homeport-agones", AGONES).body["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = {
        ("allocation.agones.dev", "gameserverallocations", "create"),
        *(("agones.dev", "gameservers", v) for v in ("get", "list", "watch")),
        *(("agones.dev", "fleets", v) for v in ("get", "patch")),
        *(("agones.dev", "fleets/scale", v) for v in ("get", "patch")),
    }
    assert needed <= granted
    assert not any(verb in ("*", "delete") for _, _, verb in granted)


def test_no_manifest_sets_a_namespace() -> None:
    """Namespace-agnostic: `kubectl apply -n` or kustomize chooses it (a RoleBinding's subject
    names the ServiceAccount's, which cannot be left out)."""
    assert [str(d) for d in resources() if "namespace" in d.body["metadata"]] == []


def test_timeouts_leave_homeport_its_own() -> None:
    """The readiness probe waits longer than /readyz waits for the database, and the pod's
    grace period covers the preStop pause plus serve's own shutdown grace."""
    spec = pod_spec(deployment())
    container = homeport_container(deployment())
    assert container["readinessProbe"]["timeoutSeconds"] > READY_TIMEOUT
    pause = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    needed = int(pause[1]) + SHUTDOWN_GRACE_SECONDS
    assert spec["terminationGracePeriodSeconds"] >= needed
