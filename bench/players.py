"""Versioned player-document saves: how many a second, and how fast.

Dedicated servers save a player's data at key moments — level up, disconnect, every few
minutes — each save naming the version it replaces (`If-Match`), so throughput of versioned
writes bounds how many players one deployment serves. Target: at least 4,000 versioned
document writes/s on PostgreSQL with p99 under 35 ms (SQLite is measured too).

For each database the benchmark starts a fresh `homeport serve`, creates a key with
`players:write`, makes the players (anonymous device accounts, over HTTP) and gives each a
1 KiB `profile/main` document (version 1). Then `wrk` (2 threads, 64 connections, 15 s after a
5-second warm-up that is not reported) cycles through the players, each thread its own half:
every request a PUT of a new 1 KiB document with `If-Match` set to the version the previous
answer for that player gave, the key as Bearer and no Content-Type, as a Godot server sends
it. A player is saved again only after the thread has gone through all its other players, so
its previous answer is always back: every save should be a 200, and a 409 counts as a failure.

Run from the repository root (needs `wrk`):

    python bench/players.py                      # SQLite and PostgreSQL, 2 workers
    python bench/players.py --db postgresql --players 500 --duration 5

Then it runs `bench/leaderboards.py` with its defaults (submissions and ranks among 100,000
records, on the same databases); `--documents-only` skips that half.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import uuid

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
    run_each,
    run_wrk,
    start,
    summarise,
    wrk_lua,
    wrk_missing,
)

import leaderboards

TARGET_WRITES = 4_000.0
TARGET_P99_MS = 35.0
WARMUP_SECONDS = 5
CONCURRENCY = 16
DOCUMENT_BYTES = 1024
# Making the players is setup, not what is measured: the per-address login limit is lifted.
SETTINGS = {"HOMEPORT_AUTH_ADDRESS_MAX_ATTEMPTS": "1000000"}


def document(player: int) -> dict[str, object]:
    """A 1 KiB profile, shaped like a game's: numbers, a list, nested stats, some text."""
    base: dict[str, object] = {
        "xp": player * 37 % 100_000,
        "level": player % 60 + 1,
        "cosmetics": ["hat-red", "cape-blue", "trail-sparks"],
        "stats": {"kills": player % 500, "deaths": player % 300, "playtime": player * 11},
        "quests": [{"id": f"q{q}", "step": q % 4} for q in range(6)],
    }
    filler = DOCUMENT_BYTES - len(json.dumps({"value": {**base, "notes": ""}}))
    base["notes"] = "n" * max(filler, 0)
    return base


async def make_players(base: str, key: str, count: int) -> list[str]:
    """Device accounts, each with a version-1 profile; their ids."""
    semaphore = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0) as client:

        async def one(n: int) -> str:
            async with semaphore:
                login = await client.post("/v1/auth/device", json={"device_id": uuid.uuid4().hex})
                if login.status_code not in (200, 201):
                    raise BenchError(f"device login answered {login.status_code}: {login.text}")
                player_id = str(login.json()["player"]["id"])
                saved = await client.put(
                    f"/v1/players/{player_id}/data/profile/main",
                    json={"value": document(n), "version": 0},
                    headers={"Authorization": f"Bearer {key}"},
                )
                if saved.status_code != 200:
                    raise BenchError(f"first save answered {saved.status_code}: {saved.text}")
                return player_id

        return list(await asyncio.gather(*(one(n) for n in range(count))))


async def current_versions(base: str, key: str, players: list[str]) -> list[int]:
    """Each player's profile version now (the warm-up run moved them on)."""
    semaphore = asyncio.Semaphore(CONCURRENCY)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30.0) as client:

        async def one(player: str) -> int:
            async with semaphore:
                response = await client.get(f"/v1/players/{player}/data/profile/main")
            if response.status_code != 200:
                raise BenchError(f"reading a profile answered {response.status_code}")
            return int(response.json()["version"])

        return list(await asyncio.gather(*(one(p) for p in players)))


def save_script(key: str, players: list[str], versions: list[int], threads: int) -> str:
    """Lua for wrk: PUT each player's profile with If-Match from the last answer for it."""
    prelude = f'wrk.method = "PUT"\nauth = {lua_string("Bearer " + key)}\nversions = {{}}'
    entries = [
        f"{{{lua_string(player)}, {lua_string(json.dumps({'value': document(n)}))}, {version}}}"
        for n, (player, version) in enumerate(zip(players, versions, strict=True))
    ]
    build = (
        'wrk.format(nil, "/v1/players/" .. entry[1] .. "/data/profile/main",'
        ' {["Authorization"] = auth, ["If-Match"] = tostring(versions[entry[1]] or entry[3])},'
        " entry[2])"
    )
    on_response = (
        "if status == 200 then\n"
        '    local id = string.match(body, \'"player_id":"([%x%-]+)"\')\n'
        "    local version = string.match(body, '\"version\":(%d+)')\n"
        "    if id and version then versions[id] = tonumber(version) end\n"
        "  end"
    )
    return wrk_lua(prelude, entries, "", build=build, on_response=on_response, threads=threads)


def bench_one(db: str, args: argparse.Namespace, measured: list[Measurement]) -> None:
    with contextlib.ExitStack() as stack:
        live: Live = start(stack, db, args.workers, SETTINGS)
        key = create_key(live, "players:write")
        players = asyncio.run(make_players(live.base, key, args.players))
        print(f"  {db}: {len(players)} players, each with a 1 KiB profile", flush=True)
        script = live.work / "saves.lua"
        threads = min(WRK_THREADS, args.connections)
        script.write_text(save_script(key, players, [1] * len(players), threads))
        url = f"{live.base}/v1/players"
        run_wrk(url, script, args.connections, WARMUP_SECONDS)
        versions = asyncio.run(current_versions(live.base, key, players))
        script.write_text(save_script(key, players, versions, threads))
        measurement = Measurement(
            "saves",
            db,
            args.workers,
            args.connections,
            args.duration,
            run_wrk(url, script, args.connections, args.duration),
            target_p99_ms=TARGET_P99_MS,
            target_rps=TARGET_WRITES,
            rate_name="writes/s",
        )
        measured.append(measurement)
        report(measurement, 5)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_run_options(parser, duration=15, connections=64)
    parser.add_argument("--players", type=int, default=2000)
    parser.add_argument(
        "--documents-only",
        action="store_true",
        help="skip the leaderboard half (bench/leaderboards.py, run with its defaults)",
    )
    args = parser.parse_args(argv)
    require_positive(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if wrk_missing():
        return 1
    print(
        f"players: workers={args.workers} players={args.players} connections={args.connections}"
        f" duration={args.duration}s wrk threads<={WRK_THREADS} cores={os.cpu_count()}",
        flush=True,
    )
    measured: list[Measurement] = []
    failed = run_each("players", args.db, lambda db: bench_one(db, args, measured))
    targets = (
        f"target: >= {TARGET_WRITES:,.0f} versioned writes/s with p99 < {TARGET_P99_MS:.0f} ms"
    )
    if summarise(targets, measured):
        failed = True
    if not args.documents_only:
        # The other half of player data: leaderboard submissions and ranks among 100,000.
        print(flush=True)
        common = ["--db", args.db, "--workers", str(args.workers)]
        failed = leaderboards.main(common) != 0 or failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
