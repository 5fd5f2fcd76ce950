"""`homeport leaderboards …`: manage boards from the command line."""

from __future__ import annotations

import typer

app = typer.Typer(help="Leaderboards: create, list and delete boards.")
