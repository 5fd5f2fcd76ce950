"""Fleet refusals."""

from __future__ import annotations

from homeport.errors import Conflict, Forbidden, NotFound, Unavailable


class FleetNotFound(NotFound):
    slug = "fleet-not-found"
    title = "No fleet has this name"


class GameServerNotFound(NotFound):
    slug = "game-server-not-found"
    title = "No server of this fleet has this id"


class NoServerAvailable(Unavailable):
    slug = "no-server-available"
    title = "No ready server matched within the wait: the fleet is at capacity or starting one"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class FleetCommandsForbidden(Forbidden):
    slug = "fleet-commands-forbidden"
    title = (
        "The admin API may not set what a local fleet runs (command, working_dir, environment)"
        " unless fleet_admin_commands is on; define the fleet in homeport.toml"
    )


class ServerNotDrainable(Conflict):
    slug = "server-not-drainable"
    title = "This server has already ended"


class ServerNotReachable(Conflict):
    slug = "server-not-reachable"
    title = (
        "This server has no live registry entry to hear a drain request; its orchestrator ends"
        " it (under Agones, the game server's SDK Shutdown)"
    )
