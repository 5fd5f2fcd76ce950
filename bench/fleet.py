"""Fleet allocation latency, and how long a fleet of reference servers takes to come up.

A matchmaker allocates a server for every match it forms and the players wait on the answer
(target: p99 under 100 ms with a ready server waiting); how long a fleet takes to reach its
size bounds how fast a host recovers from a restart or absorbs a scale-up. Per database:

- allocation: `homeport serve` without its fleet agent (only the allocations change the
  fleet), holding more ready servers than allocations, made as the agent makes them and
  registered over HTTP with their own keys, no process behind them. N allocations by one
  client, then N by 10 at once, each timed from request sent to address received.
- start-up: `homeport serve` with its agent scales a fleet of `python -m homeport.sim.server`
  from 0 to 50; the first, 25th and 50th server are timed to registered `ready` (allocatable)
  and to `ready` in the fleet. Then SIGTERM must drain all 50 and exit 0.

    python bench/fleet.py                                  # SQLite and PostgreSQL
    python bench/fleet.py --databases sqlite --allocations 200 --skip-startup

The PASS/MISS lines are informational. The exit status is 1 when something failed to run, an
allocation failed or gave a server out twice, or a server did not come up or stop cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
from common import (
    DATABASES,
    HEALTH_TIMEOUT,
    BenchError,
    Live,
    base_env,
    create_key,
    free_port,
    log_tail,
    pg_cluster,
    run_cli,
    run_each,
    stop_process,
)
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from homeport.clock import SystemClock
from homeport.db.engine import create_engine, create_sessionmaker
from homeport.db.session import unit_of_work
from homeport.fleet.allocation import new_server
from homeport.fleet.keys import issue_key
from homeport.fleet.models import Fleet, GameServer
from homeport.fleet.spec import FleetSpec
from homeport.fleet.spec import GameServerState as S
from homeport.settings import Settings

TARGET_P99_MS = 100.0
FLEET = "bench"
FIRST_PORT = 10_000
INSERT_BATCH = 500
REGISTER_CONCURRENCY = 16
SPARE = 50
"""Ready servers left after the last allocation: no allocation may find the fleet empty."""
SIM = [sys.executable, "-m", "homeport.sim.server", "--port", "{port}"]
HEARTBEAT_SECONDS = "5"
"""A 15-second lease: long enough for a server starting on a busy machine to keep it."""
READY_TIMEOUT = 180.0
DRAIN_TIMEOUT = 90.0
Grant = tuple[str, str, int]
"""An allocation's answer: server id, address, port."""
Servers = dict[str, tuple[str, int]]
"""Prepared servers: {server id: (its key, its port)}."""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), round(fraction * len(ordered))) - 1)]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def database(live: Live) -> AsyncIterator[AsyncEngine]:
    """The live server's database, straight: for setup and checks, never for what is timed."""
    env = live.env
    engine = create_engine(
        Settings(data_dir=Path(env["HOMEPORT_DATA_DIR"]), db_url=env.get("HOMEPORT_DB_URL"))
    )
    try:
        yield engine
    finally:
        await engine.dispose()


async def prepare(live: Live, count: int) -> Servers:
    """`count` servers of the stored fleet as its agent starts them, each with its bound key."""
    clock = SystemClock()
    made: Servers = {}
    async with database(live) as engine:
        for first in range(0, count, INSERT_BATCH):
            async with unit_of_work(create_sessionmaker(engine)) as session:
                stored = await session.get(Fleet, FLEET)
                if stored is None:
                    raise BenchError(f"homeport serve did not store the fleet {FLEET!r}")
                spec = FleetSpec.model_validate(stored.spec)
                for n in range(first, min(count, first + INSERT_BATCH)):
                    row = new_server(FLEET, spec, clock, reason="bench")
                    row.state, row.port = S.STARTING.value, FIRST_PORT + n
                    row.started_at = clock.now()
                    session.add(row)
                    made[str(row.id)] = (await issue_key(session, clock, row, spec), row.port)
    return made


async def register(live: Live, servers: Servers) -> None:
    """Each server registers `ready` with its own key, as the game server does once it listens;
    then ANALYZE, as autovacuum would have by now on a live database: without statistics
    PostgreSQL plans the allocation query for empty tables (~0.5 s over 2,000 servers)."""
    semaphore = asyncio.Semaphore(REGISTER_CONCURRENCY)
    limits = httpx.Limits(max_connections=REGISTER_CONCURRENCY)
    async with httpx.AsyncClient(base_url=live.base, limits=limits, timeout=30.0) as client:

        async def one(server_id: str, key: str, port: int) -> None:
            body = {"name": f"bench-{port}", "address": "127.0.0.1", "port": port}
            body |= {"max_players": 8, "state": "ready"}
            async with semaphore:
                answer = await client.post("/v1/servers", json=body, headers=bearer(key))
            if answer.status_code != 201 or answer.json()["server"]["id"] != server_id:
                raise BenchError(f"registering {server_id}: {answer.status_code} {answer.text}")

        await asyncio.gather(*(one(i, key, port) for i, (key, port) in servers.items()))
    async with database(live) as engine, engine.begin() as connection:
        await connection.execute(text("ANALYZE"))


async def allocate(
    base: str, key: str, count: int, clients: int, granted: list[Grant]
) -> tuple[list[float], float]:
    """`count` allocations shared by `clients` clients, each sending its next request when the
    answer to the last is in; answers go to `granted`. (latencies in ms, wall seconds)."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(
        base_url=base, headers=bearer(key), limits=limits, timeout=30.0
    ) as client:

        async def matchmaker(share: int) -> None:
            for _ in range(share):
                sent = time.perf_counter()
                answer = await client.post(f"/v1/fleets/{FLEET}/allocate", json={"wait": 0})
                latencies.append((time.perf_counter() - sent) * 1000.0)
                if answer.status_code != 200:
                    raise BenchError(f"allocation answered {answer.status_code}: {answer.text}")
                body = answer.json()
                granted.append((body["server_id"], body["address"], body["port"]))

        shares = [count // clients + (n < count % clients) for n in range(clients)]
        started = time.perf_counter()
        await asyncio.gather(*(matchmaker(share) for share in shares if share))
        return latencies, time.perf_counter() - started


def check_grants(base: str, admin: str, servers: Servers, granted: list[Grant]) -> None:
    """Every grant a prepared server at its own address, none twice, all counted allocated."""
    ids = [server_id for server_id, _, _ in granted]
    if len(set(ids)) != len(ids):
        raise BenchError(f"{len(ids) - len(set(ids))} servers were handed out twice")
    for server_id, address, port in granted:
        if server_id not in servers or (address, port) != ("127.0.0.1", servers[server_id][1]):
            raise BenchError(f"allocation gave {server_id} at {address}:{port}: not that server")
    answer = httpx.get(f"{base}/v1/fleets/{FLEET}", headers=bearer(admin), timeout=30.0)
    counts = answer.json().get("servers") if answer.status_code == 200 else answer.text
    expected = {"allocated": len(ids), "starting": len(servers) - len(ids)}
    if counts != expected:
        raise BenchError(f"the fleet counts {counts}, expected {expected}")


def bench_allocation(db: str, args: argparse.Namespace, summary: list[str]) -> None:
    spec = {"command": ["unused"], "port_range": [FIRST_PORT, 65_535]}
    settings = {
        "HOMEPORT_FLEET_ENABLED": "false",
        "HOMEPORT_FLEETS": json.dumps({FLEET: spec}),
        # A 30-minute lease: registering thousands of servers must not outlast it.
        "HOMEPORT_REGISTRY_HEARTBEAT_INTERVAL": "600",
    }
    with contextlib.ExitStack() as stack:
        live, _ = start_fleet(stack, db, args.workers, settings)
        warmup = 2 * args.clients
        count = warmup + 2 * args.allocations + SPARE
        began = time.monotonic()
        servers = asyncio.run(prepare(live, count))
        asyncio.run(register(live, servers))
        took = time.monotonic() - began
        print(f"  {db}: {count} ready servers made and registered in {took:.1f}s", flush=True)
        key, admin = create_key(live, "fleet"), admin_key(live)
        granted: list[Grant] = []
        asyncio.run(allocate(live.base, key, warmup, args.clients, granted))  # not reported
        for clients in (1, args.clients):
            run = allocate(live.base, key, args.allocations, clients, granted)
            latencies, seconds = asyncio.run(run)
            p99 = percentile(latencies, 0.99)
            print(
                f"allocate  {db:<10}  clients={clients:<2}  count={len(latencies)}"
                f"  p50={percentile(latencies, 0.5):.1f}ms  p99={p99:.1f}ms"
                f"  max={max(latencies):.1f}ms  allocations/s={len(latencies) / seconds:.0f}",
                flush=True,
            )
            verdict = "PASS" if p99 < TARGET_P99_MS else "MISS"
            summary.append(f"  {db:<10}  clients={clients:<2}  {verdict}  p99={p99:.1f}ms")
        check_grants(live.base, admin, servers, granted)
        print(f"  {db}: {len(granted)} allocations, each a different server", flush=True)


def admin_key(live: Live) -> str:
    output = run_cli(["keys", "create", "--name", "bench-admin", "--admin"], live.env, live.work)
    key = output.strip().splitlines()[-1].strip() if output.strip() else ""
    if not key.startswith("hp_admin_"):
        raise BenchError(f"no admin key in `homeport keys create` output:\n{output}")
    return key


def fleet_processes(data_dir: Path) -> list[int]:
    """Live processes a Homeport with this data directory started: the fleet marks each."""
    mark = f"HOMEPORT_FLEET_HOME={data_dir.resolve()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and mark in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def _reap(data_dir: Path) -> None:
    """After a failed run, no game server may outlive the benchmark."""
    for pid in fleet_processes(data_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def start_fleet(
    stack: contextlib.ExitStack, db: str, workers: int, settings: dict[str, str]
) -> tuple[Live, subprocess.Popen[bytes]]:
    """As `common.start`, keeping hold of the process: the benchmark sends the SIGTERM."""
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="homeport-bench-")))
    (work / "data").mkdir()
    db_url = stack.enter_context(pg_cluster()) if db == "postgresql" else None
    env = base_env(work / "data", db_url, settings)
    if db_url is not None:
        run_cli(["migrate"], env, work)
    port = free_port()
    log = stack.enter_context((work / "server.log").open("wb"))
    stack.callback(_reap, work / "data")
    argv = ["homeport", "serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(
        argv, env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    stack.callback(stop_process, proc)
    live = Live(work, env, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{live.base}/healthz", timeout=1.0).status_code == 200:
                return live, proc
        time.sleep(0.2)
    raise BenchError("homeport serve did not become healthy:\n" + log_tail(work / "server.log"))


def wait_ready(live: Live, client: httpx.Client, count: int) -> list[dict[str, str]]:
    """Poll the fleet until `count` of its servers are ready; their listings."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        answer = client.get(f"/v1/fleets/{FLEET}/servers")
        if answer.status_code != 200:
            raise BenchError(f"listing the fleet answered {answer.status_code}: {answer.text}")
        servers: list[dict[str, str]] = answer.json()["servers"]
        ready = [s for s in servers if s["state"] == "ready"]
        if len(ready) >= count:
            return ready
        if time.monotonic() > deadline:
            states = dict(Counter(s["state"] for s in servers))
            log = log_tail(live.work / "server.log")
            raise BenchError(f"{len(ready)} of {count} ready, states {states}:\n{log}")
        time.sleep(0.1)


async def unclean(live: Live, ids: list[str]) -> dict[str, tuple[str, int | None] | None]:
    """Those of the servers that did not end stopped with status 0, as the database says."""
    query = select(GameServer.id, GameServer.state, GameServer.exit_code)
    async with database(live) as engine, engine.connect() as connection:
        rows = (await connection.execute(query.where(GameServer.fleet == FLEET))).all()
    ended = {str(server_id): (state, code) for server_id, state, code in rows}
    return {i: ended.get(i) for i in ids if ended.get(i) != (S.STOPPED.value, 0)}


def bench_startup(db: str, args: argparse.Namespace, summary: list[str]) -> None:
    scaling = {"replicas": 0, "max_servers": args.servers}
    spec = {"command": SIM, "port_range": [28_000, 28_999], "scaling": scaling}
    settings = {
        "HOMEPORT_FLEETS": json.dumps({FLEET: spec}),
        "HOMEPORT_REGISTRY_HEARTBEAT_INTERVAL": HEARTBEAT_SECONDS,
    }
    with contextlib.ExitStack() as stack:
        live, proc = start_fleet(stack, db, args.workers, settings)
        headers = bearer(admin_key(live))
        client = stack.enter_context(httpx.Client(base_url=live.base, headers=headers))
        scaled = datetime.now().astimezone()
        answer = client.post(f"/v1/admin/fleets/{FLEET}/scale", json={"replicas": args.servers})
        if answer.status_code != 200:
            raise BenchError(f"scaling answered {answer.status_code}: {answer.text}")
        ready = wait_ready(live, client, args.servers)
        listed = [client.get(f"/v1/servers/{s['id']}") for s in ready]
        if any(entry.status_code != 200 for entry in listed):
            raise BenchError("a ready server is missing from the server list")

        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=DRAIN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise BenchError(f"still draining after {DRAIN_TIMEOUT:.0f}s") from None
        drained = time.monotonic() - sent
        if code != 0:
            raise BenchError(f"exit status {code}:\n" + log_tail(live.work / "server.log"))
        left = fleet_processes(live.work / "data")
        if left:
            raise BenchError(f"{len(left)} server processes outlived homeport serve: {left}")
        bad = asyncio.run(unclean(live, [s["id"] for s in ready]))
        if bad:
            raise BenchError(f"{len(bad)} servers did not stop with status 0: {bad}")

    def after(stamps: list[str]) -> list[float]:
        return sorted((datetime.fromisoformat(t) - scaled).total_seconds() for t in stamps)

    count, half = len(ready), len(ready) // 2
    for label, times in (
        ("registered ready", after([entry.json()["created_at"] for entry in listed])),
        ("fleet ready", after([s["ready_at"] for s in ready])),
    ):
        print(
            f"start-up  {db:<10}  servers={count}  {label:<16}  first={times[0]:.1f}s"
            f"  {half}={times[half - 1]:.1f}s  {count}={times[-1]:.1f}s",
            flush=True,
        )
        summary.append(f"  {db:<10}  {count} servers {label} in {times[-1]:.1f}s")
    print(f"drain     {db:<10}  servers={count}  SIGTERM to exit 0: {drained:.1f}s", flush=True)
    summary.append(f"  {db:<10}  {count} servers drained, exit 0, in {drained:.1f}s")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--databases", default=",".join(DATABASES), help="comma-separated")
    parser.add_argument("--allocations", type=int, default=1000, help="per run (1, 10 clients)")
    parser.add_argument("--clients", type=int, default=10, help="of the concurrent run")
    parser.add_argument("--servers", type=int, default=50, help="to bring up")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument("--skip-allocation", action="store_true")
    args = parser.parse_args(argv)
    args.databases = [db.strip() for db in args.databases.split(",") if db.strip()]
    if min(args.allocations, args.clients, args.workers, args.servers - 1) < 1:
        parser.error("--allocations, --clients and --workers take 1 or more, --servers 2 or more")
    if not args.databases or set(args.databases) - set(DATABASES):
        parser.error(f"--databases takes {','.join(DATABASES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"fleet: workers={args.workers} allocations={args.allocations} clients=1,{args.clients}"
        f" servers={args.servers} cores={os.cpu_count()}",
        flush=True,
    )
    summary: list[str] = []
    failed = False
    for db in args.databases:
        if not args.skip_allocation:
            failed |= run_each("allocate", db, lambda d: bench_allocation(d, args, summary))
        if not args.skip_startup:
            failed |= run_each("start-up", db, lambda d: bench_startup(d, args, summary))
    print(f"\ntarget: allocation p99 < {TARGET_P99_MS:.0f} ms with a ready server waiting")
    print("\n".join(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
