"""`homeport demo` as a user runs it: bounded by `--duration`, and stopped by Ctrl-C. Its
summary must show a living system (matches, saves, no error), and the backend's own database
must agree: every player it served has the xp saved that the summary's players earned."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.live import free_port

pytestmark = pytest.mark.e2e


def demo(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "homeport", "demo", "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def figures(output: str) -> dict[str, str]:
    found = dict(re.findall(r"^  ([a-z -]+[a-z]): (.*)$", output, re.MULTILINE))
    assert "errors" in found, output[-3000:]
    return found


def saved_progress(data_dir: Path) -> dict[str, int]:
    """Each player's saved xp, read from the backend's database file."""
    with sqlite3.connect(data_dir / "homeport.db") as db:
        rows = db.execute(
            "SELECT account_id, value FROM player_documents"
            " WHERE collection = 'profile' AND key = 'progress'"
        ).fetchall()
    return {str(account): int(json.loads(value)["xp"]) for account, value in rows}


def test_a_bounded_demo_shows_a_living_system(tmp_path: Path) -> None:
    run = demo(tmp_path, "--players", "30", "--duration", "30", "--port", str(free_port()))
    output, _ = run.communicate(timeout=240)
    found = figures(output)
    assert run.returncode == 0, output[-3000:]
    assert found["errors"] == "0", output[-3000:]
    assert int(found["matches"]) > 0
    assert int(found["data saves"]) > 0
    assert found["homeport serve exit"] == "0"
    assert int(found["players served"]) > 0
    progress = saved_progress(tmp_path)
    assert len(progress) == int(found["players served"])
    assert sum(progress.values()) > 0
    assert "Dashboard: http://127.0.0.1:" in output


def test_ctrl_c_drains_and_summarises(tmp_path: Path) -> None:
    run = demo(tmp_path, "--players", "4", "--port", str(free_port()))
    assert run.stdout is not None
    deadline = time.monotonic() + 90
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = run.stdout.readline()
        lines.append(line)
        if re.search(r"matches [1-9]", line):  # the plain view's line once a match formed
            break
    else:
        run.kill()
        pytest.fail("no match formed:\n" + "".join(lines)[-3000:])
    run.send_signal(signal.SIGINT)
    rest, _ = run.communicate(timeout=180)
    output = "".join(lines) + rest
    found = figures(output)
    assert run.returncode == 0, output[-3000:]
    assert found["errors"] == "0"
    assert found["homeport serve exit"] == "0"
    assert "Stopping" in output
