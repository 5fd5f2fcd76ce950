"""`homeport fleet …`: see and steer the fleets beside a running `homeport serve`.

The commands change what the database says should be; the running agent acts on it within a
pass (a second by default), as it does for the admin API.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.cli_support import load_settings, run, with_session
from homeport.clock import SystemClock
from homeport.fleet import service
from homeport.fleet.models import GameServer
from homeport.fleet.service import FleetView
from homeport.fleet.spec import GameServerState
from homeport.settings import Settings

app = typer.Typer(help="Fleets of game servers: list, status, scale, drain.")
ORDER = [s.value for s in GameServerState]


async def _configured(session: AsyncSession, settings: Settings) -> None:
    await service.sync_configured(session, SystemClock(), settings)


def _counts(view: FleetView) -> str:
    parts = [f"{view.counts[s]} {s}" for s in ORDER if view.counts.get(s)]
    return ", ".join(parts) or "no servers"


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = int((now - moment).total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@app.command("list")
def list_fleets() -> None:
    """Every fleet: where its definition comes from, its policy, its servers by state."""
    settings = load_settings()

    async def work(session: AsyncSession) -> list[FleetView]:
        await _configured(session, settings)
        return await service.list_fleets(session)

    for view in run(lambda: with_session(settings, work)):
        scaling = view.spec.scaling
        size = (
            f"fixed {scaling.replicas}"
            if scaling.replicas is not None
            else f"buffer {scaling.buffer}, min {scaling.min_ready}"
        )
        typer.echo(
            f"{view.name}\t{view.source}\t{size}, max {scaling.max_servers}\t{_counts(view)}"
        )


@app.command("status")
def status(
    name: Annotated[str | None, typer.Argument(help="One fleet; default every fleet")] = None,
    ended: Annotated[bool, typer.Option("--ended", help="Also servers that ended")] = False,
) -> None:
    """Each live server: id, fleet, state, address, players, age, pid, and why."""
    settings = load_settings()

    async def work(session: AsyncSession) -> list[GameServer]:
        await _configured(session, settings)
        return await service.list_servers(session, name, include_ended=ended)

    rows = run(lambda: with_session(settings, work))
    now = SystemClock().now()
    if not rows:
        typer.echo("no servers")
    for row in rows:
        where = f"{row.address}:{row.port}" if row.port else "-"
        typer.echo(
            "\t".join(
                str(part)
                for part in (
                    row.id,
                    row.fleet,
                    row.state,
                    where,
                    f"{row.players} players",
                    _age(row.started_at or row.created_at, now),
                    f"pid {row.pid}" if row.pid else "-",
                    row.reason,
                )
            )
        )


@app.command("scale")
def scale(
    name: Annotated[str, typer.Argument(help="The fleet")],
    replicas: Annotated[str, typer.Argument(help="A number of servers, or 'auto'")],
) -> None:
    """Fix the fleet at N servers, or give it back to its buffer policy with 'auto'. Only empty
    servers are drained to shrink it."""
    settings = load_settings()
    if replicas == "auto":
        count = None
    elif replicas.isdigit() and int(replicas) <= 10_000:
        count = int(replicas)
    else:
        typer.echo("error: REPLICAS must be a number from 0 to 10000, or 'auto'", err=True)
        raise typer.Exit(2)

    async def work(session: AsyncSession) -> FleetView:
        await _configured(session, settings)
        return await service.scale(session, SystemClock(), name, count)

    view = run(lambda: with_session(settings, work))
    typer.echo(f"{view.name}: {replicas} ({_counts(view)})")


@app.command("drain")
def drain(server_id: Annotated[str, typer.Argument(help="The server's id")]) -> None:
    """Ask one server to finish: it saves its players and exits; SIGTERM, then SIGKILL, follow
    if it does not. An Agones GameServer hears it through its registry entry and stops
    itself."""
    settings = load_settings()
    try:
        parsed = uuid.UUID(server_id)
    except ValueError as exc:
        typer.echo("error: SERVER must be a server id (a UUID)", err=True)
        raise typer.Exit(2) from exc

    async def work(session: AsyncSession) -> Any:
        await _configured(session, settings)
        row = await service.find_server(session, parsed)
        await service.request_drain(session, SystemClock(), row, reason="drained from the CLI")
        return row.state

    typer.echo(f"{server_id}: {run(lambda: with_session(settings, work))}")
