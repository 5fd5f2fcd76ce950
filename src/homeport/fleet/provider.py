"""What the fleet agent needs from whatever runs the processes: the local machine here, a
Kubernetes cluster (Agones) later. The agent keeps the states; a provider only acts."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from homeport.fleet.spec import FleetSpec


@dataclass(frozen=True)
class Launch:
    server_id: uuid.UUID
    fleet: str
    spec: FleetSpec
    port: int
    key: str
    """The server's own API key, shown to it once through its environment."""
    url: str
    """Where the server reaches Homeport."""


@dataclass(frozen=True)
class Started:
    pid: int
    process_started: float | None = None


@dataclass
class Reaped:
    """Processes of an earlier run found at start; they are stopped, not adopted."""

    server_ids: set[uuid.UUID] = field(default_factory=set)
    pids: list[int] = field(default_factory=list)


class Provider(ABC):
    name: str

    @abstractmethod
    def free_port(self, spec: FleetSpec, taken: set[int]) -> int | None:
        """A port of the fleet's range that nothing uses, or None when the range is full."""

    @abstractmethod
    async def start(self, launch: Launch) -> Started: ...

    @abstractmethod
    def exit_code(self, server_id: uuid.UUID) -> int | None:
        """The exit status once the process has ended (negative: killed by that signal)."""

    @abstractmethod
    def running(self, server_id: uuid.UUID) -> bool: ...

    @abstractmethod
    async def wait(self, server_ids: list[uuid.UUID], within: float) -> None:
        """Return once all these processes have ended, or after `within` seconds."""

    @abstractmethod
    def terminate(self, server_id: uuid.UUID) -> None:
        """SIGTERM: the server (or its wrapper) stops gracefully."""

    @abstractmethod
    def kill(self, server_id: uuid.UUID) -> None:
        """SIGKILL, to the whole process group."""

    @abstractmethod
    async def reap_orphans(self, grace: float) -> Reaped:
        """Find processes a previous run left behind and stop them (SIGTERM, then SIGKILL
        after `grace` seconds, in the background)."""

    @abstractmethod
    def forget(self, server_id: uuid.UUID) -> None:
        """Drop what is kept about an ended server."""

    @abstractmethod
    async def close(self) -> None: ...
