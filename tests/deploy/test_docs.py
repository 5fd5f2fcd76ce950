"""docs/operations.md and the comments in deploy/ name only settings and commands that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from homeport.cli import app
from homeport.identity import server_keys
from tests.deploy.cli import CommandLineError, parse
from tests.deploy.manifests import DEPLOY, ENV_NAME, ROOT, setting_names
from tests.deploy.test_agones import addon_variables

OPERATIONS = ROOT / "docs" / "operations.md"
SEPARATORS = {"&&", "||", ";", "|", "&"}
STARTERS = SEPARATORS | {"--", "exec", "sudo", "$"}
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def code_texts(markdown: str) -> list[str]:
    """Fenced code lines and inline code spans: where commands are written."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.S | re.M)
    outside = re.sub(r"^```[^\n]*\n.*?^```", "", markdown, flags=re.S | re.M)
    lines = [line for block in fenced for line in block.splitlines()]
    return lines + re.findall(r"`([^`\n]+)`", outside)


def comment_texts(path: Path) -> list[str]:
    return [
        line.split("#", 1)[1]
        for line in path.read_text().splitlines()
        if line.lstrip().startswith("#")
    ]


def homeport_commands(text: str) -> list[list[str]]:
    """Each `homeport ...` command in a line of shell, up to the next separator."""
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError:
        tokens = text.split()
    found = []
    for n, token in enumerate(tokens):
        before = tokens[:n]
        starts = not before or before[-1] in STARTERS or all(ASSIGNMENT.match(t) for t in before)
        if token == "homeport" and starts:
            rest = tokens[n:]
            ends = [i for i, t in enumerate(rest) if t in SEPARATORS]
            command = rest[: ends[0]] if ends else rest
            if len(command) > 1:  # `homeport` alone names the project, the image or an object
                found.append(command)
    return found


def check_command(argv: list[str]) -> None:
    """The subcommands exist and every `--option` is one of the command's (values may be
    placeholders such as NAME, so they are not checked)."""
    words = [argv[0]]
    for token in argv[1:]:
        if token.startswith("-"):
            break
        words.append(token)
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    for word in words[1:]:
        if not hasattr(command, "commands"):
            break
        if word not in command.commands:
            raise CommandLineError(f"no such command: homeport {' '.join([*path, word])}")
        command, path = command.commands[word], [*path, word]
    if hasattr(command, "commands"):
        raise CommandLineError(f"`homeport {' '.join(path)}` needs a subcommand")
    known = {name for param in command.params for name in param.opts}
    for n, token in enumerate(argv[1:], start=1):
        option = token.split("=", 1)[0]
        if option.startswith("--") and option not in known:
            raise CommandLineError(f"homeport {' '.join(path)} has no option {option}")
        if option == "--scopes" and n + 1 < len(argv):
            try:
                server_keys.parse_scopes(argv[n + 1])
            except ValueError as exc:
                raise CommandLineError(f"homeport {' '.join(path)}: {exc}") from exc


def sources() -> list[tuple[str, list[str]]]:
    files = [p for p in DEPLOY.rglob("*") if p.is_file()]
    return [
        ("docs/operations.md", code_texts(OPERATIONS.read_text())),
        *((str(p.relative_to(ROOT)), comment_texts(p)) for p in sorted(files)),
    ]


@pytest.mark.parametrize(("name", "texts"), sources(), ids=[s[0] for s in sources()])
def test_named_commands_exist(name: str, texts: list[str]) -> None:
    for text in texts:
        for argv in homeport_commands(text):
            check_command(argv)


def test_operations_names_commands() -> None:
    """The scanner finds what it is meant to check (a scanner that finds nothing passes all)."""
    commands = [c for t in code_texts(OPERATIONS.read_text()) for c in homeport_commands(t)]
    found = {" ".join(c[:3]) for c in commands}
    assert {"homeport keys rotate-signing", "homeport keys create", "homeport keys revoke"} <= found
    assert any(c[:2] == ["homeport", "migrate"] for c in commands)


def test_variables_in_operations_exist() -> None:
    named = set(ENV_NAME.findall(OPERATIONS.read_text()))
    assert "HOMEPORT_DB_URL" in named
    # Homeport's settings, and the variables a game server is given (docs/fleet.md).
    assert named - setting_names() - addon_variables() == set()


@pytest.mark.parametrize(
    "argv",
    [
        "homeport keys rotate",
        "homeport serve --worker 2",
        "homeport keys",
        "HOMEPORT_DATA_DIR=x homeport migrat",
        "homeport keys create --name a --scopes validate,players",
    ],
)
def test_a_wrong_command_is_caught(argv: str) -> None:
    (command,) = homeport_commands(argv)
    with pytest.raises(CommandLineError):
        check_command(command)


def test_commands_are_found_where_shell_starts_them() -> None:
    text = "kubectl exec deploy/homeport -- homeport keys list && echo homeport is up"
    assert homeport_commands(text) == [["homeport", "keys", "list"]]
    assert parse(["homeport", "keys", "list"]) == ("keys", "list")


def test_the_leader_loops_listed_are_those_that_run() -> None:
    """The loops' names, and their count in the connection budget, follow the code."""
    source = (ROOT / "src" / "homeport" / "background.py").read_text()
    running = set(re.findall(r'Leadership\(settings, "([a-z-]+)"\)', source))
    assert running
    text = OPERATIONS.read_text()
    (bullet,) = re.findall(r"- \*\*Leader-only loops\*\* \((.*?)\)", text, flags=re.S)
    assert set(re.findall(r"`([a-z-]+)`", bullet.split(";")[0])) == running
    assert re.findall(r"leads \((\d+) in all", text) == [str(len(running))]
