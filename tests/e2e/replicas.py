"""Several `homeport serve` replicas on one PostgreSQL, as production runs them: each in a
session of its own, so `kill -9` of one takes its workers with it, as a crashed machine would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from homeport.clock import SystemClock
from homeport.db.engine import create_engine, create_sessionmaker
from homeport.db.session import unit_of_work
from homeport.fleet import keys as fleet_keys
from homeport.fleet.allocation import new_server
from homeport.fleet.models import Fleet
from homeport.fleet.spec import FleetSpec, GameServerState
from homeport.leader import lock_key
from homeport.settings import Settings
from tests.e2e.live import HOMEPORT, free_port


class Replica:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = env
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [*HOMEPORT, "serve", "--port", str(self.port), "--workers", "1"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"replica not ready:\n{self.log.read_text()[-3000:]}")

    def pids(self) -> set[int]:
        """The replica's processes: its session (the supervisor and its workers)."""
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[3]) == self.process.pid:
                    found.add(int(entry.name))
        return found

    def kill(self) -> None:
        """What a crashed machine does: no goodbye, workers included."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


async def leader_of(
    replicas: Iterable[Replica], db_url: str, loop: str, timeout: float = 20
) -> Replica:
    """The replica whose process holds the loop's advisory lock: PostgreSQL names the lock
    holder's connection, the kernel names the process that owns that socket."""
    key = lock_key(loop) & 0xFFFF_FFFF_FFFF_FFFF
    dsn = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    deadline = time.monotonic() + timeout
    connection = await asyncpg.connect(dsn)
    try:
        while time.monotonic() < deadline:
            port = await connection.fetchval(
                "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.classid::bigint = $1"
                " AND a.datname = current_database()"
                " AND l.objid::bigint = $2 AND l.objsubid = 1 AND l.granted",
                key >> 32,
                key & 0xFFFF_FFFF,
            )
            if port is not None:
                owner = _socket_owner(int(port))
                for replica in replicas:
                    if replica.process.poll() is None and owner in replica.pids():
                        return replica
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    raise AssertionError(f"no live replica leads {loop}")


def _socket_owner(local_port: int) -> int | None:
    """The pid of the process with a TCP socket bound to this local port (IPv4 or IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
                    inodes.add(fields[9])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(entry.name)
    return None


async def ready_fleet_servers(db_url: str, registry_url: str, fleet: str, count: int) -> list[str]:
    """Ready servers of a stored fleet, registered with their own bound keys, as the fleet
    agent would have started them (no process runs behind them)."""
    settings = Settings(db_url=db_url)
    engine = create_engine(settings)
    clock = SystemClock()
    made: list[tuple[str, str, int]] = []
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            stored = await session.get(Fleet, fleet)
            assert stored is not None, f"no fleet {fleet}"
            spec = FleetSpec.model_validate(stored.spec)
            for index in range(count):
                row = new_server(fleet, spec, clock, reason="test")
                row.state, row.port = GameServerState.STARTING.value, 40_000 + index
                row.started_at = clock.now()
                session.add(row)
                key = await fleet_keys.issue_key(session, clock, row, spec)
                made.append((str(row.id), key, row.port))
    finally:
        await engine.dispose()
    async with httpx.AsyncClient(base_url=registry_url, timeout=30) as http:
        for _, key, port in made:
            body = {"name": f"s-{uuid.uuid4().hex[:6]}", "port": port, "address": "127.0.0.1"}
            body |= {"max_players": 2, "state": "ready"}
            answer = await http.post(
                "/v1/servers", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert answer.status_code == 201, answer.text
    return [server_id for server_id, _, _ in made]
