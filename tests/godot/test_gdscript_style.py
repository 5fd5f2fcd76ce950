"""A fast first gate on every GDScript file, before any engine runs: gdtoolkit (pinned in the
test extra) parses, lints and checks the formatting of the addon, the example and the tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    str(path.relative_to(REPO))
    for folder in ("godot", "examples", "tests/godot")
    for path in (REPO / folder).rglob("*.gd")
    if ".godot" not in path.parts and not (path.parent / path.name).is_symlink()
)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


@pytest.mark.parametrize(
    "command",
    [["gdparse"], ["gdlint"], ["gdformat", "--check", "--line-length", "100"]],
    ids=["gdparse", "gdlint", "gdformat"],
)
def test_every_gdscript_file(command: list[str]) -> None:
    assert SCRIPTS, "no GDScript files found"
    ran = subprocess.run(
        [_tool(command[0]), *command[1:], *SCRIPTS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
