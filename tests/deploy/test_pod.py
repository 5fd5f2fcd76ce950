"""The manifests' commands run for real, in the order docs/operations.md gives: against a new
PostgreSQL database, the Deployment's `homeport serve` refuses to start before the migration
Job's `homeport migrate` has run; after it, it serves and answers its probes and the image's
health check, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from dockerfile_parse import DockerfileParser
from sqlalchemy.engine import make_url

from tests.deploy.manifests import KUBERNETES, container_env, containers, one
from tests.deploy.test_dockerfile import DOCKERFILE, run_healthcheck
from tests.e2e.live import free_port


@pytest.fixture
def empty_database(postgres_url: str) -> Iterator[str]:
    """A database of its own, with no schema at all (what a first install finds)."""
    name = f"deploy_{uuid.uuid4().hex[:12]}"
    admin = make_url(postgres_url).set(drivername="postgresql")

    async def run(statement: str) -> None:
        connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield admin.set(database=name).render_as_string(hide_password=False)
    asyncio.run(run(f'DROP DATABASE "{name}" WITH (FORCE)'))


def pod_environment(container_env_: dict[str, str], data_dir: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(container_env_)
    # What a cluster provides differently: the database, the volume's path, no S3 here (the
    # same code runs; tests/worlds covers S3 against a real S3-protocol server).
    env.update(
        HOMEPORT_DB_URL=db_url,
        HOMEPORT_DATA_DIR=str(data_dir),
        HOMEPORT_WORLDS_STORAGE="local",
        HOMEPORT_LOG_LEVEL="warning",
        HOMEPORT_DASHBOARD_SECRET="a real secret of 32 characters or more",
    )
    return env


def with_local_address(argv: list[str], port: int) -> list[str]:
    """The container's command, on loopback and a free port instead of 0.0.0.0:8080."""
    argv = list(argv)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    return [sys.executable, "-m", "homeport", *argv[1:]]


def test_the_job_migrates_then_the_deployment_serves(empty_database: str, tmp_path: Path) -> None:
    deployment = one("Deployment", "homeport", KUBERNETES)
    (serve,) = containers(deployment, init=False)
    (migrate,) = containers(one("Job", "homeport-migrate", KUBERNETES), init=False)
    data_dir = tmp_path / "data"
    env = pod_environment(container_env(deployment, serve), data_dir, empty_database)

    # The signing Secret's content: the file `homeport keys rotate-signing` writes, copied
    # into the data volume as the init container does.
    keys_env = {**env, "HOMEPORT_DATA_DIR": str(tmp_path / "keys")}
    subprocess.run(
        [sys.executable, "-m", "homeport", "keys", "rotate-signing"],
        env=keys_env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    (data_dir / "keys").mkdir(parents=True, mode=0o700)
    secret = tmp_path / "keys" / "keys" / "signing.json"
    shutil.copy(secret, data_dir / "keys" / "signing.json")
    secret_kids = {key["kid"] for key in json.loads(secret.read_text())["keys"]}

    port = free_port()
    early = subprocess.run(
        with_local_address(serve["command"], port),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert early.returncode == 1, early.stdout + early.stderr
    assert "homeport migrate" in early.stderr

    migrated = subprocess.run(
        [sys.executable, "-m", "homeport", *migrate["command"][1:]],
        env=pod_environment(container_env(deployment, migrate), tmp_path / "job", empty_database),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            with_local_address(serve["command"], port), env=env, stdout=out, stderr=out
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "homeport serve did not come up"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = serve[probe]["httpGet"]["path"]
            assert httpx.get(url + path, timeout=5).status_code == 200, path
        # Every replica signs with the Secret's key rather than making one of its own.
        jwks = httpx.get(f"{url}/.well-known/jwks.json", timeout=5).json()
        assert {key["kid"] for key in jwks["keys"]} == secret_kids
        assert run_healthcheck(DockerfileParser(str(DOCKERFILE)), port) == 0
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    assert code == 0, log.read_text()
