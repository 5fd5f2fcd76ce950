"""Validate and heartbeat throughput with one replica and with two, on one PostgreSQL.

Replicas are how Homeport grows past one machine: each `homeport serve` is stateless and they
share the database. This measures what a second replica adds for the two hottest calls. Each
replica runs one worker; the load is the same in both runs — two `wrk` processes of
`--connections` each, both aimed at the single replica, or one at each of the two — so only
the number of serving processes changes. Everything (PostgreSQL, both replicas, both wrk) shares
this machine's cores, so on a 2-core box the second replica mostly competes with the first for
CPU: the ratio shows that ceiling, not what two machines would do.

    python bench/replicas.py                        # 15 s per run, 32 connections per wrk
    python bench/replicas.py --duration 30 --connections 64
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import validate
from common import (
    WRK,
    WRK_THREADS,
    BenchError,
    WrkResult,
    base_env,
    free_port,
    parse_wrk,
    pg_cluster,
    require_positive,
    run_cli,
    server,
    wrk_missing,
)

import registry

WARMUP = 5
SERVERS = 2_000  # registered servers the heartbeats cycle through
PLAYERS = 1_000


def both_wrk(urls: list[str], script: Path, connections: int, duration: int) -> list[WrkResult]:
    """Two wrk processes at once, one per URL given (the same URL twice for one replica)."""
    threads = max(1, min(WRK_THREADS, connections) // 2)
    command = [WRK, "-t", str(threads), "-c", str(connections), "-d", f"{duration}s"]
    command += ["--timeout", "10s", "--latency", "-s", str(script)]
    running = [
        subprocess.Popen([*command, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for url in urls
    ]
    results = []
    for proc in running:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise BenchError(f"wrk exited {proc.returncode}:\n{out}{err}")
        results.append(parse_wrk(out))
    return results


def measure(
    name: str, bases: list[str], path: str, script: Path, args: argparse.Namespace
) -> tuple[float, float, int]:
    """Requests/s summed over both wrk, the worse p99, and the wrong answers."""
    urls = [f"{base}{path}" for base in bases]
    both_wrk(urls, script, args.connections, WARMUP)
    results = both_wrk(urls, script, args.connections, args.duration)
    rps = sum(r.requests_per_second for r in results)
    p99 = max(r.p99_ms for r in results)
    wrong = sum(r.non_2xx + r.non_200 for r in results)
    print(
        f"  {name:<10} replicas={len(set(bases))}  {rps:8.0f} requests/s  p99={p99:.1f} ms"
        f"  non-2xx={wrong}",
        flush=True,
    )
    return rps, p99, wrong


def run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="homeport-replicas-")))
        db_url = stack.enter_context(pg_cluster())
        data = work / "data"  # shared: the replicas share the token-signing keys
        data.mkdir()
        env = base_env(data, db_url, {"HOMEPORT_FLEET_ENABLED": "false"})
        run_cli(["migrate"], env, work)

        def replica(index: int) -> str:
            place = work / f"replica-{index}"
            place.mkdir()
            return stack.enter_context(server(env, place, free_port(), 1))

        first = replica(0)
        key = run_cli(
            ["keys", "create", "--name", "bench", "--scopes", "validate,registry"], env, work
        ).split()[-1]
        tokens = asyncio.run(validate.create_players(first, PLAYERS))
        bodies = registry.fleet(SERVERS)
        ids = asyncio.run(registry.register(first, key, [body for body, _ in bodies]))
        scripts = {
            "validate": (work / "validate.lua", validate.wrk_script(key, tokens)),
            "heartbeat": (
                work / "heartbeat.lua",
                registry.heartbeat_script(key, list(zip(ids, (p for _, p in bodies), strict=True))),
            ),
        }
        for path, text in scripts.values():
            path.write_text(text)
        paths = {"validate": "/v1/validate", "heartbeat": "/"}
        figures: dict[str, list[float]] = {}
        wrong = 0
        for bases in ([first, first], None):
            if bases is None:  # the second run: a second replica takes half the load
                bases = [first, replica(1)]
            for name, (script, _) in scripts.items():
                rps, _, bad = measure(name, bases, paths[name], script, args)
                figures.setdefault(name, []).append(rps)
                wrong += bad
        print(f"\n{os.cpu_count()} cores; PostgreSQL, the replicas and wrk all share them.")
        for name, (one, two) in figures.items():
            print(
                f"  {name:<10} 1 replica {one:8.0f}/s   2 replicas {two:8.0f}/s   x{two / one:.2f}"
            )
        return 1 if wrong else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=32, help="per wrk process")
    args = parser.parse_args(argv)
    require_positive(parser, args)
    if wrk_missing():
        return 1
    try:
        return run(args)
    except BenchError as exc:
        print(f"replicas: could not run: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
