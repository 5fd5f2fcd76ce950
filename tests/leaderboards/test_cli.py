"""`homeport leaderboards create | list | delete` against a SQLite data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from homeport.cli import app


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("HOMEPORT_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def test_create_list_and_delete(runner: CliRunner) -> None:
    made = runner.invoke(app, ["leaderboards", "create", "weekly-kills", "--reset", "weekly"])
    assert made.exit_code == 0, made.output
    assert made.output.startswith("created weekly-kills\tdesc\tbest\tweekly\t")
    laps = ["laps", "--order", "asc", "--operator", "latest", "--cron", "0 0 1 */3 *"]
    made = runner.invoke(app, ["leaderboards", "create", *laps])
    assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["leaderboards", "list"])
    assert listed.exit_code == 0
    lines = [line.split("\t")[:4] for line in listed.output.splitlines()]
    assert lines == [
        ["laps", "asc", "latest", "cron '0 0 1 */3 *'"],
        ["weekly-kills", "desc", "best", "weekly"],
    ]
    gone = runner.invoke(app, ["leaderboards", "delete", "laps"])
    assert (gone.exit_code, gone.output) == (0, "deleted laps\n")
    listed = runner.invoke(app, ["leaderboards", "list"])
    assert [line.split("\t")[0] for line in listed.output.splitlines()] == ["weekly-kills"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad id"], "id"),
        (["a", "--cron", "61 * * * *"], "minute: 61 is outside 0-59"),
        (["a", "--reset", "cron"], "reset 'cron'"),
        (["a", "--reset", "daily", "--cron", "0 0 * * *"], "reset 'cron'"),
        (["a", "--cron", "0 0 31 2 *"], "never fires"),
    ],
)
def test_bad_boards_are_refused_with_a_reason(
    runner: CliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["leaderboards", "create", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_duplicates_and_unknown_boards_exit_1(runner: CliRunner) -> None:
    assert runner.invoke(app, ["leaderboards", "create", "kills"]).exit_code == 0
    again = runner.invoke(app, ["leaderboards", "create", "kills"])
    assert again.exit_code == 1
    assert "exists" in again.output
    missing = runner.invoke(app, ["leaderboards", "delete", "nothing"])
    assert missing.exit_code == 1
    assert "No leaderboard has this id" in missing.output
