"""What a fleet is: the template its servers are started from and the policy that sizes it.

Specs come from `homeport.toml` (`[fleets.NAME]`) or the admin API and are stored in the
database, so every process and replica sees the same fleets.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from homeport.fleet.agones.spec import AgonesSpec
from homeport.validators import printable

FLEET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
FleetName = Annotated[str, StringConstraints(pattern=FLEET_NAME.pattern)]
Arg = Annotated[str, StringConstraints(min_length=0, max_length=4096), AfterValidator(printable)]
LabelKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-/]{1,63}$")]
LabelValue = Annotated[str, StringConstraints(pattern=r"^[^|]{0,63}$"), AfterValidator(printable)]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
Port = Annotated[int, Field(ge=1, le=65535)]
Text = Annotated[str, StringConstraints(max_length=64), AfterValidator(printable)]

REFERENCE_SERVER = ("homeport", "sim-server", "--port", "{port}")
DEFAULT_KEY_SCOPES = (
    "validate",
    "registry",
    "players:read",
    "players:write",
    "leaderboards",
    "worlds",
)
"""What a fleet server's own key may do: what a game server needs, nothing an operator does."""


class GameServerState(StrEnum):
    """Agones' lifecycle, so a studio moving to Agones keeps its mental model."""

    SCHEDULED = "scheduled"
    """Wanted, not started yet (waiting for a port, the crash back-off or the provider)."""
    STARTING = "starting"
    """Process running, not registered as ready yet."""
    READY = "ready"
    ALLOCATED = "allocated"
    DRAINING = "draining"
    UNHEALTHY = "unhealthy"
    """Stopped heartbeating or never became ready in time: being stopped, to be replaced."""
    STOPPED = "stopped"
    CRASHED = "crashed"
    """Exited without being asked to: counts towards the fleet's crash back-off."""


LIVE_STATES = frozenset(
    {
        GameServerState.SCHEDULED,
        GameServerState.STARTING,
        GameServerState.READY,
        GameServerState.ALLOCATED,
        GameServerState.DRAINING,
        GameServerState.UNHEALTHY,
    }
)
ENDED_STATES = frozenset({GameServerState.STOPPED, GameServerState.CRASHED})


class ScalingPolicy(BaseModel):
    """Agones' buffer policy: keep `buffer` servers ready beyond those in use, within bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    buffer: int = Field(1, ge=0, le=1000)
    """Ready, empty servers kept waiting for allocations and joining players."""
    min_ready: int = Field(0, ge=0, le=1000)
    """Servers kept running (ready or in use) even when no one plays."""
    max_servers: int = Field(10, ge=0, le=10_000)
    """Never more servers than this, whatever the demand."""
    scale_down_delay: float = Field(60.0, ge=0, le=86_400)
    """Seconds a surplus server must have stayed empty before it is drained."""
    replicas: int | None = Field(None, ge=0, le=10_000)
    """A fixed size (`homeport fleet scale NAME N`) that replaces the buffer policy."""
    allocated_idle_timeout: float = Field(600.0, ge=1, le=7 * 86_400)
    """Seconds an allocated server may stay without any player before it is drained: the match
    never started or its server forgot to exit."""

    @model_validator(mode="after")
    def _bounds(self) -> ScalingPolicy:
        if self.min_ready > self.max_servers:
            raise ValueError("min_ready must not exceed max_servers")
        return self


class FleetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["local", "agones"] = "local"
    """`local`: Homeport starts the processes on this machine. `agones`: Agones runs them on
    Kubernetes (see the `agones` section); `command` and the process settings do not apply."""
    command: Annotated[list[Arg], Field(min_length=1, max_length=64)] = list(REFERENCE_SERVER)
    """Program and arguments; `{port}`, `{server_id}`, `{fleet}` and `{address}` are replaced,
    e.g. `["./server.x86_64", "--headless", "--", "--port", "{port}"]`. A leading `homeport`
    runs this installation's Homeport. Default: the reference dedicated server."""
    working_dir: Annotated[str, StringConstraints(max_length=4096)] | None = None
    environment: Annotated[dict[EnvName, Arg], Field(max_length=64)] = {}
    port_range: tuple[Port, Port] = (7000, 7999)
    address: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.:\-]{1,253}$")] = "127.0.0.1"
    """Where players reach this host's servers (given to each server as HOMEPORT_ADDRESS)."""
    region: Text = ""
    version: Text = ""
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=32)] = {}
    wrapper: bool = False
    """Run the command under Homeport's SIGTERM wrapper, which turns the signal into the stop
    file headless Godot can watch (it has no SIGTERM handler of its own)."""
    grace_period: float = Field(30.0, ge=0, le=3600)
    """Seconds between SIGTERM and SIGKILL."""
    drain_notice: float | None = Field(None, ge=0, le=3600)
    """Seconds a server has to act on the drain request in its heartbeat before SIGTERM; unset:
    one heartbeat interval and five seconds."""
    start_timeout: float = Field(60.0, ge=1, le=3600)
    """Seconds a started server has to register as ready before it counts as unhealthy."""
    key_scopes: Annotated[list[str], Field(max_length=16)] = list(DEFAULT_KEY_SCOPES)
    scaling: ScalingPolicy = ScalingPolicy()
    agones: AgonesSpec | None = None
    """Where an `agones` fleet's servers live; required for that provider, refused for others."""

    @model_validator(mode="after")
    def _coherent(self) -> FleetSpec:
        from homeport.identity.server_keys import SCOPES

        low, high = self.port_range
        if low > high:
            raise ValueError("port_range must be (low, high) with low <= high")
        unknown = set(self.key_scopes) - SCOPES
        if unknown:
            raise ValueError(f"unknown key_scopes: {', '.join(sorted(unknown))}")
        if (self.provider == "agones") != (self.agones is not None):
            raise ValueError("an `agones` section goes with provider = 'agones', and only there")
        return self

    def notice(self, heartbeat_interval: float) -> float:
        return heartbeat_interval + 5.0 if self.drain_notice is None else self.drain_notice
