"""The `local` provider: server processes on this machine, each in a process group of its own
(so a signal reaches the wrapper and the game alike, and Ctrl-C in Homeport's terminal does
not), its output in rotated log files, its ports taken from the fleet's range.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from homeport.fleet.logs import RotatingLog
from homeport.fleet.provider import Launch, Provider, Reaped, Started
from homeport.fleet.spec import FleetSpec
from homeport.fleet.wrapper import wrapper_path
from homeport.observability import multiprocess
from homeport.settings import Settings

log = logging.getLogger("homeport.fleet")

HOME_ENV = "HOMEPORT_FLEET_HOME"
"""Set on every server process: which Homeport (data directory) started it, so that a later
run of the same Homeport recognises its orphans and leaves everyone else's processes alone."""


class LaunchFailed(Exception):
    """The command could not be started at all (missing program, bad directory)."""


@dataclass
class _Running:
    process: asyncio.subprocess.Process
    waiter: asyncio.Task[int]
    pump: asyncio.Task[None]


def _bindable(port: int) -> bool:
    """Whether both TCP and UDP (ENet) can use the port on every address."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("0.0.0.0", port))  # noqa: S104 - a probe, closed at once
            except OSError:
                return False
    return True


def _warn_if_ephemeral(low: int, high: int) -> None:
    """Ports the kernel hands to outgoing connections can be taken between the check that a
    port is free and the server's own bind: a range inside them makes starts fail now and then."""
    try:
        first, last = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return
    if low <= last and high >= first:
        log.warning(
            "port_range %d-%d overlaps the ephemeral ports %d-%d of outgoing connections:"
            " a server may now and then fail to bind its port; choose ports below %d",
            low,
            high,
            first,
            last,
            first,
        )


def process_start_time(pid: int) -> float | None:
    """The kernel's start time of a process (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return float(stat.rsplit(")", 1)[1].split()[19])


def _environment(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class LocalProvider(Provider):
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = str(settings.data_dir.resolve())
        self.logs = settings.fleet_dir / "logs"
        self.run_dir = settings.fleet_dir / "run"
        self._running: dict[uuid.UUID, _Running] = {}
        self._ports: dict[uuid.UUID, int] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._checked_ranges: set[tuple[int, int]] = set()

    def free_port(self, spec: FleetSpec, taken: set[int]) -> int | None:
        low, high = spec.port_range
        if (low, high) not in self._checked_ranges:
            self._checked_ranges.add((low, high))
            _warn_if_ephemeral(low, high)
        busy = taken | set(self._ports.values())
        for port in range(low, high + 1):
            if port not in busy and _bindable(port):
                return port
        return None

    def stop_file(self, server_id: uuid.UUID) -> Path:
        return self.run_dir / f"{server_id}.stop"

    def _argv(self, launch: Launch) -> list[str]:
        values = {
            "port": str(launch.port),
            "server_id": str(launch.server_id),
            "fleet": launch.fleet,
            "address": launch.spec.address,
        }
        argv = [arg.format_map(values) for arg in launch.spec.command]
        if argv[0] == "homeport":  # the same installation as this server, whatever PATH says
            argv[:1] = [sys.executable, "-m", "homeport"]
        if launch.spec.wrapper:
            argv = ["/bin/sh", str(wrapper_path()), *argv]
        return argv

    def _env(self, launch: Launch) -> dict[str, str]:
        # Homeport's own settings (a database URL with its password, say) stay out of reach,
        # and so does its counters' directory, where a game server's metrics do not belong.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("HOMEPORT_") and k != multiprocess.ENV
        }
        env.update(launch.spec.environment)
        env.update(
            {
                "HOMEPORT_URL": launch.url,
                "HOMEPORT_SERVER_KEY": launch.key,
                "HOMEPORT_SERVER_ID": str(launch.server_id),
                "HOMEPORT_PORT": str(launch.port),
                "HOMEPORT_ADDRESS": launch.spec.address,
                "HOMEPORT_FLEET": launch.fleet,
                "HOMEPORT_REGION": launch.spec.region,
                "HOMEPORT_VERSION": launch.spec.version,
                "HOMEPORT_STOP_FILE": str(self.stop_file(launch.server_id)),
                HOME_ENV: self.home,
            }
        )
        return env

    async def start(self, launch: Launch) -> Started:
        await asyncio.to_thread(self._prepare, launch.server_id)
        name = f"{launch.fleet}-{launch.server_id}.log"
        sink = RotatingLog(
            self.logs / name,
            max_bytes=self.settings.fleet_log_max_bytes,
            backups=self.settings.fleet_log_backups,
        )
        try:
            process = await asyncio.create_subprocess_exec(
                *self._argv(launch),
                cwd=launch.spec.working_dir,
                env=self._env(launch),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise LaunchFailed(f"{type(exc).__name__}: {exc}") from exc
        assert process.stdout is not None
        self._running[launch.server_id] = _Running(
            process,
            asyncio.create_task(process.wait(), name=f"fleet-wait:{launch.server_id}"),
            asyncio.create_task(sink.pump(process.stdout), name=f"fleet-log:{launch.server_id}"),
        )
        self._ports[launch.server_id] = launch.port
        return Started(process.pid, process_start_time(process.pid))

    def _prepare(self, server_id: uuid.UUID) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.stop_file(server_id).unlink(missing_ok=True)

    def exit_code(self, server_id: uuid.UUID) -> int | None:
        running = self._running.get(server_id)
        return None if running is None else running.process.returncode

    def running(self, server_id: uuid.UUID) -> bool:
        running = self._running.get(server_id)
        return running is not None and running.process.returncode is None

    async def wait(self, server_ids: list[uuid.UUID], within: float) -> None:
        waiters = [self._running[i].waiter for i in server_ids if i in self._running]
        pending = [w for w in waiters if not w.done()]
        if pending and within > 0:
            await asyncio.wait(pending, timeout=within)

    def terminate(self, server_id: uuid.UUID) -> None:
        if self.running(server_id):
            _signal_group(self._running[server_id].process.pid, signal.SIGTERM)

    def kill(self, server_id: uuid.UUID) -> None:
        running = self._running.get(server_id)
        if running is not None:
            # Also after the leader exited: whatever it left in its group goes too.
            _signal_group(running.process.pid, signal.SIGKILL)

    def forget(self, server_id: uuid.UUID) -> None:
        running = self._running.pop(server_id, None)
        self._ports.pop(server_id, None)
        if running is not None:
            _signal_group(running.process.pid, signal.SIGKILL)
        self.stop_file(server_id).unlink(missing_ok=True)

    async def reap_orphans(self, grace: float) -> Reaped:
        reaped = await asyncio.to_thread(self._find_orphans)
        for pid in reaped.pids:
            _signal_group(pid, signal.SIGTERM)
        if reaped.pids:
            log.warning("stopping %d server processes left by an earlier run", len(reaped.pids))
            task = asyncio.create_task(self._kill_later(reaped.pids, grace))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return reaped

    def _find_orphans(self) -> Reaped:
        ours = {r.process.pid for r in self._running.values()}
        reaped = Reaped()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in ours:
                continue
            pid = int(entry.name)
            env = _environment(pid)
            if env.get(HOME_ENV) != self.home:
                continue
            with contextlib.suppress(ValueError, KeyError):
                reaped.server_ids.add(uuid.UUID(env["HOMEPORT_SERVER_ID"]))
            with contextlib.suppress(ProcessLookupError):
                group = os.getpgid(pid)
                if group not in reaped.pids:
                    reaped.pids.append(group)
        return reaped

    async def _kill_later(self, groups: list[int], grace: float) -> None:
        await asyncio.sleep(grace)
        for group in groups:
            _signal_group(group, signal.SIGKILL)

    async def close(self) -> None:
        for server_id in list(self._running):
            self.kill(server_id)
        pumps = [r.pump for r in self._running.values()]
        waiters = [r.waiter for r in self._running.values()]
        if pumps or waiters:
            await asyncio.wait([*pumps, *waiters], timeout=5)
        for task in self._background:
            task.cancel()
