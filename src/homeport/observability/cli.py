"""`homeport status`: how a running instance is doing, for a person or a script."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from homeport.cli_support import load_settings
from homeport.observability.status import Status, Unreachable, gather


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.items() if n) or "none"


def render(status: Status) -> str:
    """A few aligned lines; sections without anything to say are left out."""
    rows: list[tuple[str, str]] = [
        ("instance", status.url),
        ("version", status.version or "?"),
        ("ready", "yes" if status.ready else "NO (the database does not answer)"),
    ]
    if status.metrics != "ok":
        rows.append(("metrics", status.metrics))
    else:
        rows.append(("servers", f"{_counts(status.servers)}; {status.players} players"))
        for name, fleet in sorted(status.fleets.items()):
            detail = _counts(fleet.get("live", fleet["servers"]))
            if "scaling" in fleet:
                detail += f" (scaling {_inline(fleet['scaling'])}"
                detail += f", crash streak {fleet['crash_streak']})"
            rows.append((f"fleet {name}", detail))
        for name, queue in sorted(status.queues.items()):
            detail = f"tickets {_counts(queue['tickets'])}"
            if "format" in queue:
                detail = f"{queue['format']}, {queue['searching']} searching; {detail}"
            rows.append((f"queue {name}", detail))
        rows.append(("requests", _inline(status.requests)))
        for name, counted in status.outcomes.items():
            if counted:
                rows.append((name.replace("_", " "), _inline(counted)))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


def _inline(values: dict[str, Any]) -> str:
    return ", ".join(f"{name} {value}" for name, value in values.items())


def status(
    url: Annotated[
        str | None, typer.Option(help="The instance; default: HOMEPORT_HOST and _PORT")
    ] = None,
    admin_key: Annotated[
        str | None, typer.Option(help="An admin key, to list fleets' and queues' settings")
    ] = None,
    metrics_token: Annotated[
        str | None, typer.Option(help="Default: HOMEPORT_METRICS_TOKEN", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer")] = 5.0,
) -> None:
    """Summarise a running instance: readiness, version, servers, fleets, queues, and what it
    has counted since it started. Exit status 1 when it does not answer or is not ready."""
    settings = load_settings()
    target = url or settings.model_copy(update={"fleet_public_url": None}).url_for_servers
    try:
        found = gather(
            target.rstrip("/"),
            admin_key=admin_key,
            metrics_token=metrics_token or settings.metrics_token,
            timeout=timeout,
        )
    except Unreachable as exc:
        if as_json:
            typer.echo(orjson.dumps({"url": target, "ready": False, "error": str(exc)}))
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(orjson.dumps(found.as_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(render(found))
    if not found.ready:
        raise typer.Exit(1)
