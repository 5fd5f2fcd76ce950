"""The SIGTERM wrapper, run by real shells around a real child: TERM becomes the stop file, the
wrapper waits for the child to leave on its own and exits with its status, and nothing but
SIGKILL ends a child that ignores the file."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from homeport.fleet.wrapper import wrapper_path

# Polls the stop file as a game would; "obey N" exits N once it appears, "deaf" never does.
CHILD = """
import os, pathlib, sys, time
stop = pathlib.Path(os.environ["HOMEPORT_STOP_FILE"])
report, mode = pathlib.Path(sys.argv[1]), sys.argv[2:]
report.write_text(f"ready {stop}")
while not (stop.exists() and mode[0] == "obey"):
    time.sleep(0.02)
report.write_text(f"saw {stop}")
sys.exit(int(mode[1]))
"""
SHELLS = ["/bin/sh", *(shell for shell in ("dash", "bash") if shutil.which(shell))]


class Wrapped:
    def __init__(self, shell: str, tmp_path: Path, mode: list[str], env: dict[str, str]) -> None:
        self.report = tmp_path / "report"
        child = tmp_path / "child.py"
        child.write_text(CHILD)
        environ = {k: v for k, v in os.environ.items() if k != "HOMEPORT_STOP_FILE"}
        self.process = subprocess.Popen(
            [shell, str(wrapper_path()), sys.executable, str(child), str(self.report), *mode],
            env={**environ, **env},
            start_new_session=True,  # its own group, so a test can SIGKILL the child too
        )
        self.stop_file = Path(self._wait_report("ready "))

    def _wait_report(self, prefix: str) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = self.report.read_text() if self.report.exists() else ""
            if text.startswith(prefix):
                return text.removeprefix(prefix)
            assert self.process.poll() is None, "the wrapper exited early"
            time.sleep(0.01)
        raise AssertionError(f"the child never reported {prefix!r}")

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def exit_status(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def child_saw_the_stop_file(self) -> bool:
        return self.report.read_text() == f"saw {self.stop_file}"

    def kill_group(self) -> None:
        """The wrapper and whatever is left of its child."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def wrap(tmp_path: Path) -> Iterator[Callable[..., Wrapped]]:
    started: list[Wrapped] = []

    def start(*mode: str, shell: str = "/bin/sh", **env: str) -> Wrapped:
        started.append(Wrapped(shell, tmp_path, list(mode), env))
        return started[-1]

    yield start
    for wrapped in started:
        wrapped.kill_group()


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("status", [0, 7])
def test_sigterm_becomes_the_stop_file_and_the_childs_status_comes_through(
    wrap: Callable[..., Wrapped], tmp_path: Path, shell: str, status: int
) -> None:
    stop_file = tmp_path / "stop"
    wrapped = wrap("obey", str(status), shell=shell, HOMEPORT_STOP_FILE=str(stop_file))
    assert wrapped.stop_file == stop_file
    assert not stop_file.exists()
    asked = time.monotonic()
    wrapped.terminate()
    assert wrapped.exit_status(timeout=5) == status
    assert time.monotonic() - asked < 2
    assert wrapped.child_saw_the_stop_file()
    assert not stop_file.exists()


def test_without_a_stop_file_it_makes_a_fresh_one_in_tmpdir(
    wrap: Callable[..., Wrapped], tmp_path: Path
) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    wrapped = wrap("obey", "0", TMPDIR=str(tmpdir))
    assert wrapped.stop_file.parent == tmpdir
    wrapped.process.send_signal(signal.SIGINT)  # INT too
    assert wrapped.exit_status(timeout=5) == 0
    assert wrapped.child_saw_the_stop_file()
    assert list(tmpdir.iterdir()) == []


def test_a_stale_stop_file_is_removed_before_the_child_starts(
    wrap: Callable[..., Wrapped], tmp_path: Path
) -> None:
    stop_file = tmp_path / "stop"
    stop_file.touch()
    wrapped = wrap("obey", "0", HOMEPORT_STOP_FILE=str(stop_file))
    time.sleep(0.2)
    assert wrapped.process.poll() is None
    wrapped.terminate()
    assert wrapped.exit_status(timeout=5) == 0


@pytest.mark.parametrize("shell", SHELLS)
def test_it_outwaits_a_deaf_child_until_sigkill(
    wrap: Callable[..., Wrapped], tmp_path: Path, shell: str
) -> None:
    stop_file = tmp_path / "stop"
    wrapped = wrap("deaf", shell=shell, HOMEPORT_STOP_FILE=str(stop_file))
    wrapped.terminate()
    time.sleep(0.3)
    wrapped.terminate()  # a second TERM changes nothing
    time.sleep(0.3)
    assert wrapped.process.poll() is None
    assert stop_file.exists()
    os.killpg(wrapped.process.pid, signal.SIGKILL)
    assert wrapped.exit_status(timeout=5) == -signal.SIGKILL


def test_without_a_signal_the_status_comes_through(tmp_path: Path) -> None:
    def run(*command: str) -> int:
        return subprocess.run(["/bin/sh", str(wrapper_path()), *command], check=False).returncode

    assert run(sys.executable, "-c", "raise SystemExit(3)") == 3
    assert run(str(tmp_path / "no-such-game")) == 127
    assert run() == 2
