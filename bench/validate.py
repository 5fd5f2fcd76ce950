"""Throughput and latency of `POST /v1/validate`, the call every dedicated server makes per player.

Each player connecting to a game server costs one `/v1/validate` round trip before they may
join, so this endpoint sets how fast a fleet can admit players. The target is at least 7,500
requests/s with a 99th-percentile latency under 20 ms.

For each database (SQLite and/or a throw-away PostgreSQL cluster from `scripts/pg-cluster`)
the benchmark starts a fresh `homeport serve` in a temporary data directory, creates a server
key with the `validate` scope, signs up 1,000 device players, then drives `/v1/validate` with
`wrk` (2 threads, `--latency`) cycling through the players' access tokens. Requests carry
`Authorization: Bearer <server key>` and no Content-Type header, as the Godot game server sends
them. A 5-second warm-up run fills every worker's caches first and is not reported.

Run from the repository root (needs `wrk`: `apt-get install wrk`):

    python bench/validate.py                      # SQLite and PostgreSQL, 2 workers
    python bench/validate.py --db sqlite --workers 1 --duration 30

The comparison with the target is informational. The exit status is 1 when something failed
to run or when any validate request was answered with a status other than 200.

wrk and the server share the machine's cores, so on a small machine the figures understate
what the server alone could do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid

import httpx
from common import (
    WRK_THREADS,
    BenchError,
    Measurement,
    add_run_options,
    create_key,
    lua_string,
    report,
    require_positive,
    run_each,
    run_wrk,
    start,
    summarise,
    wrk_lua,
    wrk_missing,
)

TARGET_RPS = 7_500.0
TARGET_P99_MS = 20.0
WARMUP_SECONDS = 5
SIGNUP_CONCURRENCY = 32


async def create_players(base: str, count: int) -> list[str]:
    """Sign up `count` device players; returns their access tokens."""
    run = uuid.uuid4().hex
    semaphore = asyncio.Semaphore(SIGNUP_CONCURRENCY)
    limits = httpx.Limits(max_connections=SIGNUP_CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0) as client:

        async def one(i: int) -> str:
            async with semaphore:
                response = await client.post(
                    "/v1/auth/device", json={"device_id": f"bench-{run}-{i:06d}"}
                )
            if response.status_code != 201:
                raise BenchError(
                    f"POST /v1/auth/device answered {response.status_code}: {response.text}"
                )
            token = response.json().get("access_token")
            if not isinstance(token, str):
                raise BenchError(f"POST /v1/auth/device gave no access_token: {response.text}")
            return token

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def wrk_script(server_key: str, tokens: list[str]) -> str:
    """Lua for wrk: POST with the server key, no Content-Type, one player token per request."""
    prelude = (
        'wrk.method = "POST"\n'
        f'wrk.headers["Authorization"] = {lua_string("Bearer " + server_key)}\n'
        'wrk.headers["Content-Type"] = nil'
    )
    bodies = [lua_string('{"player_token": "' + token + '"}') for token in tokens]
    return wrk_lua(prelude, bodies, "wrk.format(nil, nil, nil, entry)")


def bench_one(db: str, args: argparse.Namespace) -> Measurement:
    with contextlib.ExitStack() as stack:
        live = start(stack, db, args.workers)
        server_key = create_key(live, "validate")

        started = time.monotonic()
        tokens = asyncio.run(create_players(live.base, args.players))
        print(f"  {db}: {len(tokens)} players in {time.monotonic() - started:.1f}s", flush=True)

        script = live.work / "validate.lua"
        script.write_text(wrk_script(server_key, tokens))
        url = f"{live.base}/v1/validate"
        run_wrk(url, script, args.connections, WARMUP_SECONDS)
        result = run_wrk(url, script, args.connections, args.duration)
        return Measurement(
            "validate",
            db,
            args.workers,
            args.connections,
            args.duration,
            result,
            target_p99_ms=TARGET_P99_MS,
            target_rps=TARGET_RPS,
        )
    raise AssertionError("unreachable")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_run_options(parser, duration=15, connections=64)
    parser.add_argument("--players", type=int, default=1000)
    args = parser.parse_args(argv)
    require_positive(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if wrk_missing():
        return 1
    print(
        f"POST /v1/validate: workers={args.workers} connections={args.connections}"
        f" wrk threads={min(WRK_THREADS, args.connections)} duration={args.duration}s"
        f" players={args.players} cores={os.cpu_count()}",
        flush=True,
    )
    outcomes: list[Measurement] = []

    def run(db: str) -> None:
        outcome = bench_one(db, args)
        report(outcome)
        outcomes.append(outcome)

    failed = run_each("validate", args.db, run)

    targets = f"target: >= {TARGET_RPS:,.0f} requests/s and p99 < {TARGET_P99_MS:.0f} ms"
    if summarise(targets, outcomes):
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
