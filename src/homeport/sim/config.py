"""The sim server's settings: command-line options over the environment the fleet sets.

The fleet starts every game server with the same HOMEPORT_* variables (where Homeport is, the
server's key and id, its port, the stop file); a person starting one by hand passes options.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path


class ConfigError(Exception):
    """The settings cannot start a server; the message says which is missing."""


@dataclasses.dataclass(frozen=True)
class Config:
    url: str
    key: str
    fleet_server_id: str | None
    port: int
    address: str
    bind: str
    name: str | None
    """None: `sim-<port>`, once the listening port is known."""
    map: str
    mode: str
    region: str
    version: str
    max_players: int
    save_interval: float
    grace: float
    stop_file: Path | None
    linger: float
    log_level: str
    world: str | None = None
    """The world this server keeps and saves (HOMEPORT_WORLD); None: no world."""
    world_save_interval: float = 60.0
    world_backup: Path | None = None
    agones_sdk_port: int | None = None
    """The Agones SDK sidecar's REST port (AGONES_SDK_HTTP_PORT), set when Agones runs it."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homeport sim-server",
        description="A reference dedicated server: registers, admits players, saves them.",
    )
    add = parser.add_argument
    add("--url", help="Homeport base URL (HOMEPORT_URL)")
    add("--key", help="server API key hp_sk_... (HOMEPORT_SERVER_KEY)")
    add("--port", type=int, help="TCP port for players, 0 for any (HOMEPORT_PORT)")
    add("--address", help="address players connect to (HOMEPORT_ADDRESS, 127.0.0.1)")
    add("--bind", default="127.0.0.1", help="address to listen on")
    add("--name", help="server name in the browser (sim-<port>)")
    add("--map", default="arena")
    add("--mode", default="")
    add("--region", help="(HOMEPORT_REGION)")
    add("--version", help="game version (HOMEPORT_VERSION)")
    add("--max-players", type=int, default=16)
    add("--save-interval", type=float, default=120.0, help="seconds; 0 saves only at moments")
    add("--grace", type=float, default=25.0, help="seconds the whole graceful stop may take")
    add("--linger", type=float, default=5.0, help="seconds to stay after an allocated match")
    add("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add("--world", help="keep and save this world (HOMEPORT_WORLD)")
    add("--world-save-interval", type=float, default=60.0, help="seconds between world saves")
    add("--world-backup", help="file for the local backup of the last save (none by default)")
    return parser


def parse(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Config:
    """Raises SystemExit for --help and unusable options (as argparse does), ConfigError when
    Homeport's URL or the server key is missing."""
    options = _parser().parse_args(argv)
    url = options.url or environ.get("HOMEPORT_URL", "")
    key = options.key or environ.get("HOMEPORT_SERVER_KEY", "")
    if not url:
        raise ConfigError("no Homeport URL: pass --url or set HOMEPORT_URL")
    if not key:
        raise ConfigError("no server key: pass --key or set HOMEPORT_SERVER_KEY")
    port = options.port
    if port is None:
        try:
            port = int(environ.get("HOMEPORT_PORT") or "0")
        except ValueError:
            raise ConfigError("HOMEPORT_PORT is not a number") from None
    if not 0 <= port <= 65535 or options.max_players < 1:
        raise ConfigError("--port must be 0..65535 and --max-players at least 1")
    stop_file = environ.get("HOMEPORT_STOP_FILE")
    sdk_port = environ.get("AGONES_SDK_HTTP_PORT") or None
    if sdk_port is not None and not (sdk_port.isdigit() and 0 < int(sdk_port) <= 65535):
        raise ConfigError("AGONES_SDK_HTTP_PORT is not a port number")
    return Config(
        url=url,
        key=key,
        fleet_server_id=environ.get("HOMEPORT_SERVER_ID") or None,
        port=port,
        address=options.address or environ.get("HOMEPORT_ADDRESS") or "127.0.0.1",
        bind=options.bind,
        name=options.name,
        map=options.map,
        mode=options.mode,
        region=options.region or environ.get("HOMEPORT_REGION", ""),
        version=options.version or environ.get("HOMEPORT_VERSION", ""),
        max_players=options.max_players,
        save_interval=max(options.save_interval, 0.0),
        grace=max(options.grace, 0.5),
        stop_file=Path(stop_file) if stop_file else None,
        linger=max(options.linger, 0.0),
        log_level=options.log_level,
        world=options.world or environ.get("HOMEPORT_WORLD") or None,
        world_save_interval=max(options.world_save_interval, 0.05),
        world_backup=Path(options.world_backup) if options.world_backup else None,
        agones_sdk_port=int(sdk_port) if sdk_port else None,
    )
