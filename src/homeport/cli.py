"""`homeport` command line: serve, migrate, and manage keys beside a running server.

Every command reads the same settings as `homeport serve` (HOMEPORT_* variables, homeport.toml),
so `homeport keys create` in another terminal acts on the database the server uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.log import LogLevels

from homeport import __version__, supervisor
from homeport.cli_support import load_settings, run, with_session
from homeport.clock import SystemClock
from homeport.db import migrate as migrations
from homeport.fleet import cli as fleet_cli
from homeport.identity import server_keys
from homeport.identity import service_keys as keys_service
from homeport.identity.server_keys import KeyKind
from homeport.identity.signing import KeyStore
from homeport.leaderboards import cli as leaderboards_cli
from homeport.observability import logs, multiprocess
from homeport.observability.cli import status
from homeport.settings import Settings
from homeport.timefmt import rfc3339

app = typer.Typer(help="Homeport: platform backend for Godot 4 dedicated-server games.")
keys_app = typer.Typer(help="Server API keys, admin keys and token signing keys.")
app.add_typer(keys_app, name="keys")
app.add_typer(leaderboards_cli.app, name="leaderboards")
app.add_typer(fleet_cli.app, name="fleet")
app.command()(status)

SHUTDOWN_GRACE_SECONDS = 30


@app.command()
def version() -> None:
    """Print the Homeport version."""
    typer.echo(__version__)


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Upgrade the database schema (SQLite file or PostgreSQL) to the newest revision."""
    settings = load_settings()
    run(lambda: migrations.upgrade(settings, revision))
    typer.echo(f"database at {revision}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes")] = None,
    api_only: Annotated[bool, typer.Option("--api-only", hidden=True)] = False,
) -> None:
    """Start the backend (embedded default: SQLite and keys in HOMEPORT_DATA_DIR), and the
    fleet agent that runs local game servers. SIGTERM drains those servers, then stops."""
    settings = load_settings()
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    if api_only:
        _serve_api(settings, host, port, workers)
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.auto_migrate:
        run(lambda: migrations.upgrade(settings))
    elif not run(lambda: migrations.is_at_head(settings)):
        typer.echo("The database schema is not current: run `homeport migrate` first.", err=True)
        raise typer.Exit(1)
    # Create the signing key before workers start, so they do not race to make one each.
    KeyStore(settings, SystemClock()).ensure()
    # Likewise the counters' directory, which every process below this one inherits.
    counters = settings.metrics_dir or multiprocess.default_directory(settings.data_dir)
    multiprocess.enable(counters)
    try:
        _serve(settings, host, port, workers)
    finally:
        multiprocess.discard(counters)


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    typer.echo(f"Homeport {__version__} on http://{host}:{port} (database: {_safe_url(settings)})")
    if settings.fleet_enabled:
        # The URL fleet servers are given must name the port actually served.
        settings = settings.model_copy(update={"host": host, "port": port})
        argv = supervisor.api_argv(host, port, workers)
        raise typer.Exit(supervisor.run(settings, argv, SHUTDOWN_GRACE_SECONDS))
    _serve_api(settings, host, port, workers)


def _serve_api(settings: Settings, host: str, port: int, workers: int) -> None:
    Granian(
        "homeport.app:create_app_from_environment",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        log_level=LogLevels(settings.log_level),
        log_dictconfig=logs.dict_config(settings),
        log_access=False,
        workers_kill_timeout=SHUTDOWN_GRACE_SECONDS,
        # HTTP/1.1 only (game engines speak it; WebSockets upgrade from it): its header timeout
        # then also closes connections that never send a byte, which "auto" leaves open.
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=int(settings.http_header_timeout * 1000)),
        backpressure=settings.http_backpressure,
    ).serve()


@app.command()
def demo(
    players: Annotated[int, typer.Option(min=1, max=2000, help="Simulated players")] = 50,
    duration: Annotated[
        float | None, typer.Option(min=1, help="Seconds of play (default: until Ctrl-C)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the demo's state here (default: a temporary dir)")
    ] = None,
    port: Annotated[int, typer.Option(help="Port for the backend")] = 8080,
) -> None:
    """See the whole system work: the backend on the embedded default, a local fleet of the
    reference dedicated server, and simulated players who register, browse, queue, join with
    their token, level up and leave (their data saved), again and again. Ctrl-C drains it all
    and prints a summary; the exit status is 1 if anything went wrong."""
    from homeport.demo.runner import DemoOptions, run_demo

    options = DemoOptions(players=players, duration=duration, data_dir=data_dir, port=port)
    raise typer.Exit(run_demo(options))


@app.command(
    "sim-server",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def sim_server(ctx: typer.Context) -> None:
    """Run the reference dedicated server (`homeport sim-server --help` for its options)."""
    from homeport.sim import server as sim

    raise typer.Exit(sim.main(list(ctx.args)))


def _safe_url(settings: Settings) -> str:
    url = settings.database_url
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A unique name, e.g. the fleet or host it is for")],
    scopes: Annotated[
        str, typer.Option(help=f"Comma-separated: {','.join(sorted(server_keys.SCOPES))}")
    ] = "validate",
    admin: Annotated[bool, typer.Option("--admin", help="Create an admin key")] = False,
) -> None:
    """Create a key and print it once, on the last line (only its hash is stored)."""
    settings = load_settings()
    try:
        scope_set = server_keys.parse_scopes(scopes)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not 1 <= len(name) <= 64:
        typer.echo("error: --name must have 1 to 64 characters", err=True)
        raise typer.Exit(2)
    kind = KeyKind.ADMIN if admin else KeyKind.SERVER
    created = run(
        lambda: with_session(
            settings,
            keys_service.create_key,
            SystemClock(),
            name=name,
            kind=kind,
            scopes=frozenset(server_keys.SCOPES) if admin else scope_set,
        )
    )
    typer.echo(f"Created {kind.value} key '{name}' with scopes: {created.row.scopes}")
    typer.echo("Store it now; it cannot be shown again:")
    typer.echo(created.key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (names, kinds, scopes, state), never the keys themselves."""
    settings = load_settings()
    rows = run(lambda: with_session(settings, keys_service.list_keys))
    for row in rows:
        state = f"revoked {rfc3339(row.revoked_at)}" if row.revoked_at else "active"
        typer.echo(f"{row.name}\t{row.kind}\t{row.scopes}\t{rfc3339(row.created_at)}\t{state}")


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name")]) -> None:
    """Revoke a key; servers using it are refused within HOMEPORT_AUTH_CACHE_TTL seconds."""
    settings = load_settings()
    run(lambda: with_session(settings, keys_service.revoke_key, SystemClock(), None, name=name))
    typer.echo(f"revoked {name}")


@keys_app.command("rotate-signing")
def keys_rotate_signing() -> None:
    """Start signing tokens with a new key; the old one verifies until its tokens expire."""
    settings = load_settings()
    key = KeyStore(settings, SystemClock()).rotate()
    typer.echo(f"new signing key {key.kid}")


def main() -> None:
    app()
