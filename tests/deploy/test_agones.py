"""The Agones Fleet of the example Godot server agrees with the server's image and the addon."""

from __future__ import annotations

import re

from dockerfile_parse import DockerfileParser

from tests.deploy.manifests import (
    AGONES,
    ENV_NAME,
    ROOT,
    Manifest,
    container_env,
    containers,
    env_names,
    one,
    pod_spec,
)

ADDON = ROOT / "godot" / "addons" / "homeport"
DEMO_DOCKERFILE = ROOT / "examples" / "godot-demo" / "Dockerfile"


def fleet_container() -> Manifest:
    (container,) = containers(one("Fleet", "godot-demo", AGONES), init=False)
    return container


def addon_variables() -> set[str]:
    """The HOMEPORT_* variables the addon's server half reads."""
    source = (ADDON / "homeport_server.gd").read_text()
    return set(re.findall(r'_env\("(HOMEPORT_[A-Z_]+)"', source))


def addon_health_interval() -> float:
    source = (ADDON / "homeport_agones.gd").read_text()
    found = re.search(r"var health_interval: float = ([0-9.]+)", source)
    assert found, "homeport_agones.gd no longer declares health_interval"
    return float(found.group(1))


def test_the_server_gets_only_variables_the_addon_reads() -> None:
    names = env_names(fleet_container())
    assert {"HOMEPORT_URL", "HOMEPORT_SERVER_KEY"} <= names
    assert names <= addon_variables()
    text = (AGONES / "fleet.yaml").read_text()
    assert set(ENV_NAME.findall(text)) <= addon_variables()


def test_the_server_key_comes_from_the_secret() -> None:
    (item,) = [e for e in fleet_container()["env"] if e["name"] == "HOMEPORT_SERVER_KEY"]
    ref = item["valueFrom"]["secretKeyRef"]
    secret = one("Secret", ref["name"], AGONES).body
    assert ref["key"] in secret["stringData"]


def test_the_game_port_is_the_one_the_server_listens_on() -> None:
    fleet = one("Fleet", "godot-demo", AGONES)
    (port,) = fleet.body["spec"]["template"]["spec"]["ports"]
    assert port["portPolicy"] == "Dynamic"
    env = container_env(fleet, fleet_container())
    assert env["HOMEPORT_PORT"] == str(port["containerPort"])
    image = DockerfileParser(str(DEMO_DOCKERFILE))
    exposed = {
        p for i in image.structure if i["instruction"] == "EXPOSE" for p in i["value"].split()
    }
    assert f"{port['containerPort']}/{port['protocol'].lower()}" in exposed


def test_health_checks_leave_room_for_missed_pings() -> None:
    """The addon pings every `health_interval` s; Agones marks the server Unhealthy after
    `failureThreshold` checks of `periodSeconds` without a ping."""
    health = one("Fleet", "godot-demo", AGONES).body["spec"]["template"]["spec"]["health"]
    assert health["disabled"] is False
    assert health["periodSeconds"] >= 2 * addon_health_interval()
    assert health["failureThreshold"] >= 2


def test_the_pod_runs_as_the_images_user() -> None:
    image = DockerfileParser(str(DEMO_DOCKERFILE))
    users = [i["value"] for i in image.structure if i["instruction"] == "USER"]
    uid, _, gid = users[-1].partition(":")
    context = pod_spec(one("Fleet", "godot-demo", AGONES))["securityContext"]
    assert context["runAsNonRoot"] is True
    assert (str(context["runAsUser"]), str(context["runAsGroup"])) == (uid, gid or uid)


def test_the_autoscaler_sizes_this_fleet() -> None:
    autoscaler = one("FleetAutoscaler", "godot-demo", AGONES).body["spec"]
    assert autoscaler["fleetName"] == one("Fleet", "godot-demo", AGONES).name
    buffer = autoscaler["policy"]["buffer"]
    assert buffer["minReplicas"] <= buffer["maxReplicas"]


def test_fleet_and_game_servers_carry_the_labels_homeport_selects_on() -> None:
    fleet = one("Fleet", "godot-demo", AGONES).body
    server_labels = fleet["spec"]["template"]["metadata"]["labels"]
    pod_labels = fleet["spec"]["template"]["spec"]["template"]["metadata"]["labels"]
    assert server_labels.get("app.kubernetes.io/part-of") == "homeport"
    assert server_labels == pod_labels
