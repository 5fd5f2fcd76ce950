"""Leaderboard submissions per second and read latency (a player's rank, the top 10).

Dedicated servers submit a record at the end of every match, round or lap, so submission
throughput bounds how many games one deployment can rank; players look up their own rank and
the top of the board, and a slow rank is a slow results screen. Targets, on each database: at
least 5,000 submissions/s, and a player's rank among 100,000 records with p99 under 5 ms.

For each database (SQLite and/or a throw-away PostgreSQL cluster from `scripts/pg-cluster`) the
benchmark starts a fresh `homeport serve`, creates a board with `homeport leaderboards create`
(high scores first, operator `increment`, no reset) and a server key with the `leaderboards` scope.
It then loads 100,000 players and one record each **straight into the database** through
SQLAlchemy (a bulk insert, not 100,000 HTTP calls: only the measured requests go through the
API), with scores from a fixed seed, and runs ANALYZE, as autovacuum would have on a live
database. Then, each after a 5-second warm-up that is not reported (over at least 8
connections, so that every worker process has built its rank index before the measured run):

- submissions: `wrk` (2 threads, `--latency`, 64 connections, 15 s) POSTing
  `/v1/leaderboards/bench/records` with the key as Bearer and no Content-Type, as the Godot
  server sends it, cycling through 20,000 bodies for random players, each adding 1-100 points:
  with `increment` every submission is a write that moves the record in the standing index
  (the costliest case; `best` answers a submission that is not better without writing). The
  record writes are counted in the database afterwards.
- a player's rank: `wrk` GET `/v1/leaderboards/bench/records/{player_id}` for 5,000 random
  players, with a player's access token, over 1 connection and then 4;
- the top 10: `wrk` GET `/v1/leaderboards/bench/records?limit=10`, over 1 connection, then 4.

Run from the repository root (needs `wrk`):

    python bench/leaderboards.py                      # SQLite and PostgreSQL, 2 workers
    python bench/leaderboards.py --db sqlite --records 10000 --duration 3

The comparison with the targets is informational. The exit status is 1 when something failed
to run or a request was answered with a status other than 200. wrk and the server share the
machine's cores, so on a small machine the figures understate what the server alone could do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from common import (
    WRK_THREADS,
    BenchError,
    Live,
    Measurement,
    add_run_options,
    create_key,
    lua_string,
    report,
    require_positive,
    run_cli,
    run_each,
    run_wrk,
    start,
    wrk_lua,
    wrk_missing,
)
from sqlalchemy import func, insert, select, text

from homeport.db.engine import create_engine
from homeport.identity.models import Account
from homeport.leaderboards.models import LeaderboardRecord
from homeport.settings import Settings

TARGET_SUBMISSIONS = 5_000.0
TARGET_RANK_P99_MS = 5.0
TARGET_READ_P99_MS = 20.0
NO_TARGET = float("inf")
WARMUP_SECONDS = 5
WARMUP_CONNECTIONS = 8
BOARD = "bench"
SEED = 20_261_130
MAX_SCORE = 1_000_000
BODIES = 20_000
RANK_PLAYERS = 5_000
INSERT_BATCH = 5_000
NAME_WIDTH = 11


def _settings(live: Live) -> Settings:
    return Settings(
        data_dir=Path(live.env["HOMEPORT_DATA_DIR"]), db_url=live.env.get("HOMEPORT_DB_URL")
    )


async def load(live: Live, count: int, rng: random.Random) -> list[uuid.UUID]:
    """`count` players with one record each on the board, inserted in bulk."""
    engine = create_engine(_settings(live))
    now = datetime.now(UTC)
    now_us = int(now.timestamp() * 1_000_000)
    players = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(count)]
    try:
        for start_at in range(0, count, INSERT_BATCH):
            batch = players[start_at : start_at + INSERT_BATCH]
            accounts: list[dict[str, Any]] = []
            records: list[dict[str, Any]] = []
            for n, player in enumerate(batch, start=start_at):
                score = rng.randint(0, MAX_SCORE)
                accounts.append(
                    {
                        "id": player,
                        "email": None,
                        "password_hash": None,
                        "display_name": f"Player {n}",
                        "banned": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                records.append(
                    {
                        "board_id": BOARD,
                        "period": "all",
                        "player_id": player,
                        "score": score,
                        "subscore": 0,
                        "order_score": -score,
                        "order_subscore": 0,
                        "metadata": {},
                        "reached_us": now_us - rng.randint(0, 86_400_000_000),
                        "updated_at": now,
                        "version": 1,
                    }
                )
            async with engine.begin() as connection:
                await connection.execute(insert(Account), accounts)
                await connection.execute(insert(LeaderboardRecord), records)
        # A live database has statistics (autovacuum gathers them on PostgreSQL); a table
        # loaded a moment ago has none, and plans made without them scan whole periods.
        async with engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return players


async def changed_records(live: Live) -> int:
    """Record writes made by submissions, from the versions (each record starts at 1)."""
    engine = create_engine(_settings(live))
    try:
        async with engine.connect() as connection:
            total = await connection.scalar(
                select(func.sum(LeaderboardRecord.version) - func.count())
            )
    finally:
        await engine.dispose()
    return int(total or 0)


async def player_token(base: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        response = await client.post(
            "/v1/auth/device", json={"device_id": "bench-reader-" + uuid.uuid4().hex}
        )
        if response.status_code not in (200, 201):
            raise BenchError(f"device login answered {response.status_code}: {response.text}")
        token: str = response.json()["access_token"]
        return token


def submit_script(key: str, bodies: list[str]) -> str:
    prelude = (
        'wrk.method = "POST"\n'
        f'wrk.headers["Authorization"] = {lua_string("Bearer " + key)}\n'
        'wrk.headers["Content-Type"] = nil'
    )
    path = lua_string(f"/v1/leaderboards/{BOARD}/records")
    entries = [lua_string(body) for body in bodies]
    return wrk_lua(prelude, entries, f"wrk.format(nil, {path}, nil, entry)")


def read_script(token: str, paths: list[str]) -> str:
    prelude = f'wrk.method = "GET"\nwrk.headers["Authorization"] = {lua_string("Bearer " + token)}'
    return wrk_lua(prelude, [lua_string(p) for p in paths], "wrk.format(nil, entry)")


def timed(
    db: str,
    args: argparse.Namespace,
    live: Live,
    name: str,
    script: str,
    connections: int,
    duration: int,
) -> Measurement:
    """A warm-up run (not reported), then the measured one, reported at once."""
    path = live.work / f"{name}.lua"
    path.write_text(script)
    url = f"{live.base}/v1/leaderboards/{BOARD}"
    # Enough connections for every worker process to get some: each builds its rank index on
    # its first read, and a worker left cold would build it during the measured run.
    run_wrk(url, path, max(connections, WARMUP_CONNECTIONS), WARMUP_SECONDS)
    submissions = name == "submit"
    measurement = Measurement(
        name,
        db,
        args.workers,
        connections,
        duration,
        run_wrk(url, path, connections, duration),
        target_p99_ms={"rank": TARGET_RANK_P99_MS, "submit": NO_TARGET}.get(
            name, TARGET_READ_P99_MS
        ),
        target_rps=TARGET_SUBMISSIONS if submissions else None,
        rate_name="submissions/s" if submissions else "requests/s",
    )
    report(measurement, NAME_WIDTH)
    return measurement


def bench_one(db: str, args: argparse.Namespace, measured: list[Measurement]) -> None:
    with contextlib.ExitStack() as stack:
        live = start(stack, db, args.workers)
        run_cli(["leaderboards", "create", BOARD, "--operator", "increment"], live.env, live.work)
        key = create_key(live, "leaderboards")
        rng = random.Random(SEED)
        t0 = time.monotonic()
        players = asyncio.run(load(live, args.records, rng))
        took = time.monotonic() - t0
        token = asyncio.run(player_token(live.base))
        print(f"  {db}: {len(players)} records loaded in {took:.1f}s (bulk SQL)", flush=True)

        bodies = [
            json.dumps(
                {
                    "player_id": str(rng.choice(players)),
                    "score": rng.randint(1, 100),
                    "subscore": rng.randint(0, 9),
                    "metadata": {"match": rng.randint(1, 10**6)},
                },
                separators=(",", ":"),
            )
            for _ in range(BODIES)
        ]
        script = submit_script(key, bodies)
        measured.append(timed(db, args, live, "submit", script, args.connections, args.duration))
        changed = asyncio.run(changed_records(live))
        print(f"  {db}: {changed} record writes by submissions (warm-up included)", flush=True)

        ranked = rng.sample(players, min(RANK_PLAYERS, len(players)))
        rank_paths = [f"/v1/leaderboards/{BOARD}/records/{p}" for p in ranked]
        top_paths = [f"/v1/leaderboards/{BOARD}/records?limit=10"]
        for name, paths in (("rank", rank_paths), ("top10", top_paths)):
            script = read_script(token, paths)
            for connections in args.read_connections:
                measured.append(
                    timed(db, args, live, name, script, connections, args.read_duration)
                )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_run_options(parser, duration=15, connections=64)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--read-duration", type=int, default=10)
    parser.add_argument(
        "--read-connections",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 4],
        help="comma-separated connection counts, one read run each (default 1,4)",
    )
    args = parser.parse_args(argv)
    require_positive(parser, args)
    if not args.read_connections or min(args.read_connections) < 1:
        parser.error("--read-connections takes positive counts")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if wrk_missing():
        return 1
    print(
        f"leaderboards: workers={args.workers} records={args.records}"
        f" submit connections={args.connections} duration={args.duration}s"
        f" read connections={args.read_connections} duration={args.read_duration}s"
        f" wrk threads<={WRK_THREADS} cores={os.cpu_count()}",
        flush=True,
    )
    measured: list[Measurement] = []
    failed = run_each("leaderboards", args.db, lambda db: bench_one(db, args, measured))

    print()
    print(
        f"targets: >= {TARGET_SUBMISSIONS:,.0f} submissions/s; a rank with p99 <"
        f" {TARGET_RANK_P99_MS:.0f} ms (top 10: informational, p99 < {TARGET_READ_P99_MS:.0f} ms)"
    )
    for m in measured:
        r = m.result
        verdict = "PASS" if m.passed else "MISS"
        print(
            f"  {m.db:<10}  {m.name:<6} c={m.connections:<3} {verdict}"
            f"  {m.rate_name}={r.requests_per_second:.0f}"
            f"  p50={r.p50_ms:.2f}ms  p99={r.p99_ms:.2f}ms"
        )
        if m.answered_wrong:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
