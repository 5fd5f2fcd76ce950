"""`homeport leaderboards …`: manage boards from the command line.

The commands use the same settings as `homeport serve`, so they act on the database a running
server uses; a deleted board disappears from every server process within moments (the deletion
reaches them through the change feed, and their cached rules expire within seconds).
"""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from homeport.cli_support import load_settings, run, with_session
from homeport.clock import SystemClock
from homeport.leaderboards import service
from homeport.leaderboards.models import Leaderboard
from homeport.leaderboards.periods import Reset
from homeport.leaderboards.schemas import BoardCreate, Operator, Order
from homeport.timefmt import rfc3339

app = typer.Typer(help="Leaderboards: create, list and delete boards.")


def _describe(board: Leaderboard) -> str:
    schedule = f"cron '{board.cron}'" if board.cron else board.reset
    return (
        f"{board.id}\t{board.sort_order}\t{board.operator}\t{schedule}\t{rfc3339(board.created_at)}"
    )


@app.command("create")
def create(
    board_id: Annotated[str, typer.Argument(metavar="ID", help="Letters, digits, _ . - (≤ 64)")],
    order: Annotated[Order, typer.Option(help="desc: highest first; asc: lowest first")] = (
        Order.DESC
    ),
    operator: Annotated[
        Operator, typer.Option(help="best: keep the better; latest: replace; increment: add")
    ] = Operator.BEST,
    reset: Annotated[
        Reset | None, typer.Option(help="When a new period starts (UTC); default never")
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option(help='"minute hour day month weekday" in UTC; implies --reset cron'),
    ] = None,
) -> None:
    """Create a board. Resets start a new period and keep the old ones readable."""
    if reset is None:
        reset = Reset.CRON if cron is not None else Reset.NEVER
    try:
        body = BoardCreate(id=board_id, order=order, operator=operator, reset=reset, cron=cron)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(part) for part in error["loc"]) or "board"
            message = str(error["msg"]).removeprefix("Value error, ")
            typer.echo(f"error: {where}: {message}", err=True)
        raise typer.Exit(2) from exc
    settings = load_settings()
    row = run(lambda: with_session(settings, service.create_board, SystemClock(), body))
    typer.echo(f"created {_describe(row)}")


@app.command("list")
def list_boards() -> None:
    """List boards: id, order, operator, reset, creation time."""
    settings = load_settings()
    for row in run(lambda: with_session(settings, service.list_boards)):
        typer.echo(_describe(row))


@app.command("delete")
def delete(
    board_id: Annotated[str, typer.Argument(metavar="ID", help="The board's id")],
) -> None:
    """Delete a board and all of its records, in every period."""
    settings = load_settings()
    run(lambda: with_session(settings, service.delete_board, board_id))
    typer.echo(f"deleted {board_id}")
