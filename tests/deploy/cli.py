"""Checking a command line against Homeport's real CLI, without running it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer.main

from homeport.cli import app


class CommandLineError(ValueError):
    """The CLI would refuse the command line (its usage error's message)."""


def parse(argv: Sequence[str]) -> tuple[str, ...]:
    """The subcommand path of `argv` (`homeport keys rotate-signing` -> ("keys",
    "rotate-signing")). Raises CommandLineError for an unknown command or option, a missing
    argument or a bad value, as the CLI itself would refuse them."""
    if not argv or argv[0] != "homeport":
        raise CommandLineError(f"not a homeport command: {list(argv)}")
    command: Any = typer.main.get_command(app)
    args = list(argv[1:])
    path: list[str] = []
    while hasattr(command, "commands"):  # a group (typer ships its own click)
        if not args or args[0].startswith("-"):
            raise CommandLineError(f"`homeport {' '.join(path)}` needs a subcommand")
        name = args.pop(0)
        if name not in command.commands:
            raise CommandLineError(f"no such command: homeport {' '.join([*path, name])}")
        command, path = command.commands[name], [*path, name]
    try:
        command.make_context(" ".join(["homeport", *path]), args)
    except Exception as exc:
        if not hasattr(exc, "format_message"):  # not one of click's usage errors
            raise
        raise CommandLineError(f"homeport {' '.join(path)}: {exc.format_message()}") from exc
    return tuple(path)
