"""A real Godot 4 for the addon's tests: `scripts/godot-env` builds it (a Debian chroot, cached
outside the repository) and runs it; the test project and the addon are copied into the
chroot, where Godot sees them."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GODOT_ENV = REPO / "scripts" / "godot-env"
PROJECT = Path(__file__).resolve().parent / "project"
DEMO = REPO / "examples" / "godot-demo"
ADDON = REPO / "godot" / "addons" / "homeport"


class Godot:
    """The chroot's Godot, and where its projects go."""

    def __init__(self) -> None:
        built = subprocess.run(
            [str(GODOT_ENV)], capture_output=True, text=True, timeout=900, check=False
        )
        if built.returncode != 0:
            raise AssertionError(f"scripts/godot-env failed:\n{built.stderr[-3000:]}")
        self.root = Path(built.stdout.strip().splitlines()[-1])

    def project(self, source: Path = PROJECT) -> tuple[Path, str]:
        """A fresh copy of a project (the test project by default) with the addon, imported:
        (host path, the path Godot sees)."""
        inside = f"/tmp/homeport-test-{uuid.uuid4().hex[:12]}"
        host = self.root / inside.lstrip("/")
        shutil.copytree(source, host, ignore=shutil.ignore_patterns("addons", ".godot"))
        shutil.copytree(ADDON, host / "addons" / "homeport")
        imported = self.run("--headless", "--path", inside, "--import", timeout=180)
        assert imported.returncode == 0, imported.stdout[-3000:]
        return host, inside

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(GODOT_ENV), "run", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Godot in the background; its pid is Godot's own (the script execs it)."""
        return self._background("run", args, env, log)

    def exec(self, *command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Any command in the chroot in the background (a wrapper around Godot), as its pid."""
        return self._background("exec", command, env, log)

    def _background(
        self, mode: str, args: tuple[str, ...], env: dict[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as output:
            return subprocess.Popen(
                [str(GODOT_ENV), mode, *args],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
