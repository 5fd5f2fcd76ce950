"""Heartbeat throughput and server-browser page latency of the registry.

Every live dedicated server heartbeats `PUT /v1/servers/{id}/heartbeat` every interval, so
heartbeat throughput bounds how large a fleet one deployment can keep listed; players then page
through `GET /v1/servers` with filters, and a slow page is a slow server browser. Targets, on
each database: at least 5,000 heartbeats/s with p99 under 20 ms, and a filtered page of 50 out
of 10,000 live servers with p99 under 20 ms.

For each database (SQLite and/or a throw-away PostgreSQL cluster from `scripts/pg-cluster`)
the benchmark starts a fresh `homeport serve`, creates a server key with the `registry` scope
and registers 10,000 servers over HTTP, 16 at a time, with varied maps, modes, regions,
versions, tags, player counts and passwords (a fixed seed, so every run and database holds the
same fleet). Each has its own address, since the same key re-registering an address and port
replaces the entry. Then:

- heartbeats: `wrk` (2 threads, `--latency`) cycling through the server ids, each request a
  PUT with a small JSON body (a new player count), the key as Bearer and no Content-Type, as
  the Godot game server sends it. A 5-second warm-up run precedes the measured one.
- list pages: a set of browser queries with `limit=50` (several filter combinations, some
  sorted by name, some the page after a `next_cursor` fetched beforehand), driven by `wrk`
  after a 5-second warm-up: first over one connection (a page's own latency), then over four
  (pages under load, on cores shared with wrk).

The server runs with `HOMEPORT_REGISTRY_HEARTBEAT_INTERVAL=600`, a 30-minute lease: on a
small machine registering 10,000 servers can take longer than the default 90-second lease, and
a server whose lease lapsed would answer its heartbeats with 404 and drop out of the pages
being timed. The interval only sets the lease length; the work per heartbeat and per page is
the same. Between the two runs every server is counted through the list, which shows no lease
lapsed.

Run from the repository root (needs `wrk`: `apt-get install wrk`):

    python bench/registry.py                      # SQLite and PostgreSQL, 2 workers
    python bench/registry.py --db sqlite --servers 300 --duration 3

The comparison with the targets is informational. The exit status is 1 when something failed
to run, when any heartbeat or list request was answered with a status other than 200, or when
fewer servers were live than were registered.

wrk and the server share the machine's cores, so on a small machine the figures understate
what the server alone could do.
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
from urllib.parse import urlencode

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

TARGET_HEARTBEATS = 5_000.0
TARGET_P99_MS = 20.0
PAGE = 50
WARMUP_SECONDS = 5
REGISTER_CONCURRENCY = 16
COUNT_PAGE = 100
"""The server's default `registry_page_size_max`: the fewest requests to count the fleet."""
SEED = 20_240_601
SETTINGS = {"HOMEPORT_REGISTRY_HEARTBEAT_INTERVAL": "600"}
NAME_WIDTH = 9

MAPS = ["island", "harbor", "desert", "forest", "canyon", "arctic", "city", "ruins", "swamp"]
MODES = ["deathmatch", "team_deathmatch", "capture_the_flag", "king_of_the_hill", "coop"]
REGIONS = ["eu-west", "eu-central", "us-east", "us-west", "asia-east", "sa-east", "oceania"]
VERSIONS = ["1.4.2", "1.4.1", "1.3.9", "1.5.0-beta"]
VERSION_WEIGHTS = [60, 25, 10, 5]
TAGS = ["pvp", "pve", "ranked", "casual", "modded", "vanilla", "hardcore", "newbie", "voice"]
WORDS = ["Friendly", "Hardcore", "Chill", "Pro", "Night", "Retro", "Elite", "Classic"]
MAX_PLAYERS = [8, 10, 12, 16, 24, 32, 64]

# Browser queries and how many pages of each are timed: 1 is the first page only, 2 adds the
# page after its next_cursor, and so on. The unfiltered one is the browser's opening page.
QUERIES: list[tuple[list[tuple[str, str]], int]] = [
    ([], 2),
    ([("region", "eu-west"), ("not_full", "true")], 3),
    ([("region", "us-east"), ("mode", "deathmatch"), ("version", "1.4.2")], 1),
    ([("map", "island"), ("not_empty", "true"), ("not_full", "true")], 2),
    ([("tag", "pvp"), ("tag", "ranked"), ("sort", "name")], 2),
    ([("version", "1.4.2"), ("has_password", "false"), ("not_full", "true"), ("sort", "name")], 3),
    ([("q", "friendly"), ("sort", "name")], 1),
    ([("region", "eu-central"), ("mode", "coop"), ("sort", "newest")], 1),
    ([("region", "asia-east"), ("has_password", "false"), ("not_empty", "true")], 1),
    ([("map", "desert"), ("tag", "casual"), ("not_full", "true")], 2),
]


def zipf_weights(count: int) -> list[float]:
    """A few popular choices and a long tail, as real server lists have."""
    return [1.0 / (rank + 1) for rank in range(count)]


def player_count(rng: random.Random, max_players: int) -> int:
    """Many servers empty, some full, the rest anywhere between."""
    roll = rng.random()
    return 0 if roll < 0.35 else max_players if roll < 0.45 else rng.randint(1, max_players)


def fleet(count: int) -> list[tuple[dict[str, object], int]]:
    """Each server's registration body and the player count its heartbeats report."""
    rng = random.Random(SEED)
    map_weights = zipf_weights(len(MAPS))
    mode_weights = zipf_weights(len(MODES))
    servers: list[tuple[dict[str, object], int]] = []
    for i in range(count):
        game_map = rng.choices(MAPS, map_weights)[0]
        mode = rng.choices(MODES, mode_weights)[0]
        region = rng.choice(REGIONS)
        version = rng.choices(VERSIONS, VERSION_WEIGHTS)[0]
        max_players = rng.choice(MAX_PLAYERS)
        body: dict[str, object] = {
            "name": f"{rng.choice(WORDS)} {game_map.title()} {mode.replace('_', ' ')} #{i + 1}",
            "address": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
            "port": 27015 + i % 16,
            "map": game_map,
            "mode": mode,
            "region": region,
            "version": version,
            "players": player_count(rng, max_players),
            "max_players": max_players,
            "tags": rng.sample(TAGS, rng.randint(0, 4)),
            "metadata": {"motd": f"Welcome to server {i + 1}", "build": version},
            "password_protected": rng.random() < 0.1,
            "state": "ready" if rng.random() < 0.85 else "in_match",
        }
        servers.append((body, player_count(rng, max_players)))
    return servers


async def register(base: str, key: str, bodies: list[dict[str, object]]) -> list[str]:
    """Register every body; returns the server ids in the same order."""
    semaphore = asyncio.Semaphore(REGISTER_CONCURRENCY)
    limits = httpx.Limits(max_connections=REGISTER_CONCURRENCY)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=30.0
    ) as client:

        async def one(body: dict[str, object]) -> str:
            async with semaphore:
                response = await client.post("/v1/servers", json=body)
            if response.status_code != 201:
                raise BenchError(
                    f"POST /v1/servers answered {response.status_code}: {response.text}"
                )
            server_id = response.json().get("server_id")
            if not isinstance(server_id, str):
                raise BenchError(f"POST /v1/servers gave no server_id: {response.text}")
            return server_id

        return list(await asyncio.gather(*(one(body) for body in bodies)))


def get_page(client: httpx.Client, params: list[tuple[str, str]]) -> tuple[int, str | None]:
    """GET one list page; returns how many servers it held and its next_cursor."""
    path = f"/v1/servers?{urlencode(params)}"
    response = client.get(path)
    if response.status_code != 200:
        raise BenchError(f"GET {path} answered {response.status_code}: {response.text}")
    page = response.json()
    servers, cursor = page.get("servers"), page.get("next_cursor")
    if not isinstance(servers, list) or not (cursor is None or isinstance(cursor, str)):
        raise BenchError(f"GET {path} gave no page: {response.text[:500]}")
    return len(servers), cursor


def count_live(base: str) -> int:
    with httpx.Client(base_url=base, timeout=30.0) as client:
        total, cursor = get_page(client, [("limit", str(COUNT_PAGE))])
        while cursor is not None:
            size, cursor = get_page(client, [("limit", str(COUNT_PAGE)), ("cursor", cursor)])
            total += size
        return total


def list_paths(base: str) -> list[tuple[str, int, bool]]:
    """Every timed list request: its path, its page size, and whether it follows a cursor.
    Cursors are fetched here, so wrk sends the pages a browser would scroll to."""
    paths: list[tuple[str, int, bool]] = []
    with httpx.Client(base_url=base, timeout=30.0) as client:
        for filters, pages in QUERIES:
            params = [*filters, ("limit", str(PAGE))]
            for page in range(pages):
                size, cursor = get_page(client, params)
                paths.append((f"/v1/servers?{urlencode(params)}", size, page > 0))
                if cursor is None:
                    break
                params = [*filters, ("limit", str(PAGE)), ("cursor", cursor)]
    return paths


def heartbeat_script(key: str, beats: list[tuple[str, int]]) -> str:
    """Lua for wrk: PUT each server's heartbeat in turn with the key, no Content-Type."""
    prelude = (
        'wrk.method = "PUT"\n'
        f'wrk.headers["Authorization"] = {lua_string("Bearer " + key)}\n'
        'wrk.headers["Content-Type"] = nil'
    )
    entries = [
        f"{{{lua_string(f'/v1/servers/{server_id}/heartbeat')},"
        f" {lua_string(json.dumps({'players': players}))}}}"
        for server_id, players in beats
    ]
    return wrk_lua(prelude, entries, "wrk.format(nil, entry[1], nil, entry[2])")


def list_script(paths: list[str]) -> str:
    return wrk_lua('wrk.method = "GET"', [lua_string(p) for p in paths], "wrk.format(nil, entry)")


def timed(
    db: str, args: argparse.Namespace, name: str, live: Live, script: str, connections: int
) -> Measurement:
    """A warm-up run (not reported), then the measured one, reported at once."""
    heartbeats = name == "heartbeat"
    duration = args.duration if heartbeats else args.list_duration
    path = live.work / f"{name}.lua"
    path.write_text(script)
    url = f"{live.base}/v1/servers"
    run_wrk(url, path, connections, WARMUP_SECONDS)
    measurement = Measurement(
        name,
        db,
        args.workers,
        connections,
        duration,
        run_wrk(url, path, connections, duration),
        target_p99_ms=TARGET_P99_MS,
        target_rps=TARGET_HEARTBEATS if heartbeats else None,
        rate_name="heartbeats/s" if heartbeats else "requests/s",
    )
    report(measurement, NAME_WIDTH)
    return measurement


def bench_one(db: str, args: argparse.Namespace, measured: list[Measurement]) -> bool:
    """Run both measurements on `db`, appending each to `measured` as soon as it is taken (so
    a later failure keeps it); returns False when servers were missing from the list."""
    with contextlib.ExitStack() as stack:
        live = start(stack, db, args.workers, SETTINGS)
        key = create_key(live, "registry")
        servers = fleet(args.servers)

        started = time.monotonic()
        ids = asyncio.run(register(live.base, key, [body for body, _ in servers]))
        took = time.monotonic() - started
        print(
            f"  {db}: {len(ids)} servers registered in {took:.1f}s"
            f" ({len(ids) / took:.0f}/s, {REGISTER_CONCURRENCY} at a time)",
            flush=True,
        )
        if len(set(ids)) != len(ids):
            raise BenchError(f"{len(ids) - len(set(ids))} registrations replaced another")

        beats = [(server_id, players) for server_id, (_, players) in zip(ids, servers, strict=True)]
        script = heartbeat_script(key, beats)
        measured.append(timed(db, args, "heartbeat", live, script, args.connections))

        live_count = count_live(live.base)
        paths = list_paths(live.base)
        sizes = [size for _, size, _ in paths]
        print(
            f"  {db}: {live_count} of {len(ids)} servers live; {len(paths)} list pages"
            f" ({sum(after for _, _, after in paths)} after a cursor),"
            f" {min(sizes)}-{max(sizes)} servers each",
            flush=True,
        )
        script = list_script([path for path, _, _ in paths])
        for connections in args.list_connections:
            measured.append(timed(db, args, "list", live, script, connections))
        return live_count == len(ids)
    raise AssertionError("unreachable")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_run_options(parser, duration=15, connections=64)
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument(
        "--list-duration",
        type=int,
        help="seconds of the list measurement (default 10, or --duration if shorter)",
    )
    parser.add_argument(
        "--list-connections",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 4],
        help="comma-separated connection counts, one list run each (default 1,4: one browser"
        " alone, then four at once)",
    )
    args = parser.parse_args(argv)
    require_positive(parser, args)
    if not args.list_connections or min(args.list_connections) < 1:
        parser.error("--list-connections takes positive counts")
    if args.list_duration is None:
        args.list_duration = min(10, args.duration)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if wrk_missing():
        return 1
    print(
        f"registry: workers={args.workers} servers={args.servers}"
        f" heartbeat connections={args.connections} duration={args.duration}s"
        f" list connections={args.list_connections} duration={args.list_duration}s"
        f" wrk threads<={WRK_THREADS} cores={os.cpu_count()}",
        flush=True,
    )
    measured: list[Measurement] = []

    def run(db: str) -> bool:
        complete = bench_one(db, args, measured)
        if not complete:
            print(f"registry  {db:<10}  servers went missing from the list", file=sys.stderr)
        return complete

    failed = run_each("registry", args.db, run)

    targets = (
        f"targets: >= {TARGET_HEARTBEATS:,.0f} heartbeats/s with p99 < {TARGET_P99_MS:.0f} ms;"
        f" a page of {PAGE} with p99 < {TARGET_P99_MS:.0f} ms"
    )
    if summarise(targets, measured, NAME_WIDTH):
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
