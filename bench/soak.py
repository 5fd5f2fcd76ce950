"""Soak: simulated players against a live `homeport serve` and its fleet, for a bounded time.

A leak shows only with time, so this runs the loop a game makes over and over (device login
and token refresh, the server browser or a fleet allocation for a small group, joining a
reference server, gaining xp, leaving, reading the progress back, a leaderboard) while matches
end, their servers exit and the fleet replaces them; and samples the memory and descriptors of
`homeport serve`'s supervisor and API processes (the game servers have sessions of their own).
It passes when nothing failed, no progress was lost, no game server ended badly, memory and
descriptors stayed flat after the warm-up, and SIGTERM stopped `homeport serve` with status 0:

    python bench/soak.py                                    # 10 minutes, 40 players, SQLite
    python bench/soak.py --duration 60 --players 20 --database postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import STDOUT, Popen
from typing import Any, NamedTuple

import common
import httpx

from homeport.sim import player as sim
from homeport.sim.protocol import level_for

FLEET, BOARD, BEAT = "soak", "soak-xp", 2
SCALING = {"buffer": 2, "max_servers": 6}
SETTINGS = {
    "HOMEPORT_FLEETS": json.dumps({FLEET: {"port_range": [29000, 29999], "scaling": SCALING}}),
    "HOMEPORT_REGISTRY_HEARTBEAT_INTERVAL": str(BEAT),
    "HOMEPORT_AUTH_ACCESS_TTL": "60",  # so that every player refreshes, even in a short run
}
WARMUP = 0.2  # share of the run before the baseline: caches, pools, the fleet fill up
RSS_GROWTH, RSS_SLACK, FD_SLACK = 0.25, 30 << 20, 20  # what "flat" allows: see `levels`
STOP_TIMEOUT = 60.0  # SIGTERM to exit: the fleet's grace (30 s), then the API's (30 s)
MATCH_SHARE, GROUP, GATHER, MATCH_LENGTH = 0.05, 4, 3.0, 3 * BEAT
"""One round in twenty asks for a match, gathering up to 4 players for 3 s; a match holds one
of the 6 servers for its length, a linger and a restart. It lasts a few heartbeats: a server
hears of its allocation in a heartbeat and would not end a match that was over before."""
SETTLE = 30.0  # seconds a drained server's saves, or a gone server's deregistration, may take
Target = tuple[str, str, int]  # a game server's registry id, address and port


class Failed(Exception):
    """An operation went wrong; it is already counted as an error, the round is over."""


class Sample(NamedTuple):
    at: float
    rss: int
    fds: int
    processes: int


@dataclass
class SoakResult:
    database: str
    players: int
    duration: float
    operations: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # legitimate refusals and races
    errors: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    fleet: Counter[str] = field(default_factory=Counter)
    exit_code: int | None = None
    stop_seconds: float = 0.0

    def levels(self, metric: str) -> tuple[float, float, float, bool]:
        """Baseline, end, limit, whether flat: medians of the first and last fifth of the samples
        after the warm-up (one burst of connections is no trend); the end may be max(25 %,
        30 MiB) above the baseline in memory, 20 in descriptors."""
        start = self.samples[0].at + WARMUP * self.duration if self.samples else 0.0
        values = [getattr(s, metric) for s in self.samples if s.at >= start] or [0]
        k = max(1, len(values) // 5)
        baseline, end = statistics.median(values[:k]), statistics.median(values[-k:])
        slack = max(RSS_GROWTH * baseline, RSS_SLACK) if metric == "rss" else FD_SLACK
        return baseline, end, baseline + slack, len(values) >= 5 and end <= baseline + slack

    @property
    def passed(self) -> bool:
        flat = self.levels("rss")[3] and self.levels("fds")[3]
        return flat and not self.errors and self.exit_code == 0

    def fail(self, message: str) -> None:
        self.errors.append(message)


def sample(session: int) -> Sample:
    """RSS and open descriptors of every live process in `homeport serve`'s session."""
    rss = fds = count = 0
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):  # not a process, or gone
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session and fields[0] != "Z":
                status = (entry / "status").read_text()
                rss += int(status.split("VmRSS:")[1].split()[0]) * 1024
                fds += len(os.listdir(entry / "fd"))
                count += 1
    return Sample(time.monotonic(), rss, fds, count)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def check(answer: httpx.Response, result: SoakResult, what: str, *ok: int) -> Any:
    if answer.status_code not in ok:
        result.fail(f"{what}: {answer.status_code} {answer.text[:200]}")
        raise Failed
    return answer.json()


class Matchmaker:
    """Gathers the players who ask for a match into groups of up to `GROUP` for `GATHER`
    seconds, and allocates each group a server (with a key of scope `fleet`)."""

    def __init__(self, result: SoakResult, http: httpx.AsyncClient) -> None:
        self.result, self.http = result, http
        self.group: list[str] = []
        self.forming: asyncio.Future[Target | None] | None = None

    async def request(self, player_id: str) -> Target | None:
        if self.forming is None or len(self.group) >= GROUP:
            self.group = []
            self.forming = asyncio.ensure_future(self._allocate(self.group))
        self.group.append(player_id)
        return await asyncio.shield(self.forming)

    async def _allocate(self, group: list[str]) -> Target | None:
        await asyncio.sleep(GATHER)
        if self.group is group:  # closed: later requests start a new group
            self.forming = None
        body = {"match_id": f"soak-{random.randrange(1 << 32):08x}", "players": group, "wait": 20}
        answer = await self.http.post(f"/v1/fleets/{FLEET}/allocate", json=body)
        if answer.status_code == 503 and "no-server-available" in answer.text:
            self.result.outcomes["no-server-available"] += 1
            return None
        got = check(answer, self.result, "allocate", 200)  # what fails, fails every member
        self.result.operations["allocate"] += 1
        return got["server_id"], got["address"], got["port"]


class Player:
    """One simulated game client: its account, its tokens, and the xp it has earned."""

    def __init__(self, result: SoakResult, http: httpx.AsyncClient, index: int) -> None:
        self.result, self.http, self.ops = result, http, result.operations
        self.device = f"soak-{os.getpid()}-{index:04d}-{random.randrange(1 << 32):08x}"
        self.id = self.access = self.refresh = ""
        self.renew_at, self.earned, self.seen = 0.0, 0, 0

    async def loop(self, deadline: float, mm: Matchmaker, submitter: httpx.AsyncClient) -> None:
        errors = (httpx.HTTPError, OSError, TimeoutError, sim.Disconnected, sim.UnexpectedAnswer)
        async with self.http:
            while time.monotonic() < deadline:
                try:
                    match = bool(self.id) and random.random() < MATCH_SHARE  # browsing logs in
                    target = None if match else await self.browse()
                    if target is None:  # none listed: ask the matchmaker
                        match, target = True, await mm.request(self.id)
                    if target is not None and await self.play(target, match) and self.earned:
                        await self.check_progress()
                        await self.check_board(submitter)
                except Failed:
                    pass
                except errors as exc:
                    self.result.fail(f"player {self.device}: {exc!r}")
                await asyncio.sleep(random.uniform(0.3, 1.5))

    async def login(self) -> None:
        """Log in, or refresh the token once a third of its life is left; before each use."""
        if not self.access:
            kind, url, body = "login", "/v1/auth/device", {"device_id": self.device}
        elif time.monotonic() >= self.renew_at:
            kind, url, body = "refresh", "/v1/auth/refresh", {"refresh_token": self.refresh}
        else:
            return
        tokens = check(await self.http.post(url, json=body), self.result, kind, 200, 201)
        self.ops[kind] += 1
        self.id, self.access = tokens["player"]["id"], tokens["access_token"]
        self.refresh = tokens["refresh_token"]
        self.renew_at = time.monotonic() + tokens["expires_in"] * 2 / 3

    async def get(self, url: str, what: str, **params: str) -> Any:
        await self.login()
        answer = await self.http.get(url, params=params, headers=bearer(self.access))
        found = check(answer, self.result, what, 200, 404)
        self.ops[what] += 1
        return None if answer.status_code == 404 else found

    async def browse(self) -> Target | None:
        servers = await self.get("/v1/servers", "browse", not_full="true", state="ready")
        pick = random.choice(servers["servers"][:2] or [None])  # the fullest come first
        return None if pick is None else (pick["id"], pick["address"], pick["port"])

    async def play(self, target: Target, match: bool) -> bool:
        """True when the player joined, so that the server must have saved what it earned."""
        server_id = target[0]
        await self.login()  # waiting for a match may have taken a while
        try:
            game = await sim.connect(*target[1:], self.access, timeout=15)
        except sim.Denied as denied:
            if denied.problem_type not in ("server-full", "server-draining"):
                self.result.fail(f"join {server_id}: denied {denied.problem_type}")
            self.result.outcomes[denied.problem_type] += 1
            return False
        except OSError:  # a race, not an error, if the server leaves the list
            for _ in range(int(SETTLE * 2)):
                if await self.get(f"/v1/servers/{server_id}", "lookup") is None:
                    self.result.outcomes["server-gone"] += 1
                    return False
                await asyncio.sleep(0.5)
            self.result.fail(f"server {server_id} is listed but refuses connections")
            return False
        self.ops["join"] += 1
        if game.progress.get("xp") != self.earned:
            self.result.fail(f"{self.id} joined with {game.progress}, earned {self.earned}")
        until, gains = time.monotonic() + (MATCH_LENGTH if match else 0), random.randint(2, 5)
        try:
            while (gains := gains - 1) >= 0 or time.monotonic() < until:
                gain = random.choice((50, 120, 250, 400, 900))
                xp, level = await game.gain_xp(gain)
                self.earned += gain
                self.ops["xp"] += 1
                if (xp, level) != (self.earned, level_for(self.earned)):
                    self.result.fail(f"{self.id}: xp {xp} level {level}, earned {self.earned}")
                await asyncio.sleep(random.uniform(0.1, 0.4))
            await game.quit()
            self.ops["quit"] += 1
        except sim.Disconnected as gone:
            if gone.last_line != "BYE draining":
                raise
            self.result.outcomes["drained-while-playing"] += 1
        finally:
            await game.close()
        return True

    async def check_progress(self) -> None:
        """The stored xp never goes down and equals what the player earned: at once after a
        QUIT (the server answers once it saved), within `SETTLE` after a drain."""
        for attempt in range(int(SETTLE * 2)):
            found = await self.get("/v1/players/me/data/profile/progress", "progress")
            stored = 0 if found is None else found["value"]["xp"]  # None: not saved yet
            if stored < self.seen:
                self.result.fail(f"{self.id}: stored xp went down from {self.seen} to {stored}")
            self.seen = max(self.seen, stored)
            if stored == self.earned:
                self.result.outcomes["saved-late"] += attempt > 0
                return
            if stored > self.earned:
                break
            await asyncio.sleep(0.5)
        self.result.fail(f"{self.id}: stored xp {stored}, earned {self.earned}")

    async def check_board(self, submitter: httpx.AsyncClient) -> None:
        """What a game server would submit after the session; the board keeps the best."""
        record = {"player_id": self.id, "score": self.earned}
        answer = await submitter.post(f"/v1/leaderboards/{BOARD}/records", json=record)
        check(answer, self.result, "submit", 200)
        self.ops["submit"] += 1
        mine = await self.get(f"/v1/leaderboards/{BOARD}/records/{self.id}", "rank")
        if mine is None or mine["score"] != self.earned:
            self.result.fail(f"{self.id}: the board has {mine}, earned {self.earned}")


async def load(result: SoakResult, base: str, keys: dict[str, str], session: int) -> None:
    """The players and their matchmaker until the deadline, and samples meanwhile."""
    deadline, every = time.monotonic() + result.duration, max(1.0, result.duration / 100)

    def client(key: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base, timeout=60, headers=bearer(key) if key else {})

    async def sampler() -> None:
        while True:
            result.samples.append(await asyncio.to_thread(sample, session))
            await asyncio.sleep(every)

    async with client(keys["fleet"]) as allocator, client(keys["leaderboards"]) as submitter:
        mm, sampling = Matchmaker(result, allocator), asyncio.create_task(sampler())
        players = [Player(result, client(), i) for i in range(result.players)]
        await asyncio.gather(*(p.loop(deadline, mm, submitter) for p in players))
        sampling.cancel()
        result.samples.append(sample(session))


def check_fleet(result: SoakResult, base: str, key: str) -> list[int]:
    """No server of the fleet crashed, exited non-zero or was found unhealthy; the live pids."""
    url, params = f"{base}/v1/fleets/{FLEET}/servers", {"include_ended": "true"}
    answer = httpx.get(url, params=params, headers=bearer(key), timeout=30)
    servers = check(answer, result, "fleet servers", 200)["servers"]
    for server in servers:
        state, reason, code = server["state"], server["reason"], server["exit_code"]
        result.fleet[state] += 1
        result.fleet["allocated-empty"] += state == "allocated" and not server["players"]
        if state in ("crashed", "unhealthy") or reason.startswith("unhealthy") or code:
            result.fail(f"game server {server['id']}: {state}, {reason!r}, exit {code}")
    return [s["pid"] for s in servers if s["pid"] and s["state"] not in ("stopped", "crashed")]


def soak(duration: float = 600, players: int = 40, database: str = "sqlite") -> SoakResult:
    """Run the soak, then stop `homeport serve`; BenchError when it could not be run."""
    result = SoakResult(database, players, duration)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="homeport-soak-")))
        db_url = stack.enter_context(common.pg_cluster()) if database == "postgresql" else None
        env = common.base_env(work / "data", db_url, SETTINGS)
        if db_url is not None:
            common.run_cli(["migrate"], env, work)
        port, log_path = common.free_port(), work / "serve.log"
        with log_path.open("wb") as log:  # its session id is its pid: see `sample`
            argv = ["homeport", "serve", "--port", str(port), "--workers", "2"]
            serve = Popen(
                argv, env=env, cwd=work, stdout=log, stderr=STDOUT, start_new_session=True
            )
        stack.callback(common.stop_process, serve)  # on the way out of a failure
        base, started = f"http://127.0.0.1:{port}", time.monotonic()
        while serve.poll() is None and time.monotonic() - started < 30:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise common.BenchError(f"homeport serve did not start:\n{common.log_tail(log_path)}")

        def key(name: str, *options: str) -> str:
            args = ["keys", "create", "--name", name, *options]
            return common.run_cli(args, env, work).split()[-1]

        keys = {s: key(f"soak-{s}", "--scopes", s) for s in ("fleet", "leaderboards")}
        admin = key("soak-admin", "--admin")
        common.run_cli(["leaderboards", "create", BOARD], env, work)
        asyncio.run(load(result, base, keys, serve.pid))
        pids = check_fleet(result, base, admin)
        started = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            result.exit_code = serve.wait(STOP_TIMEOUT)
        result.stop_seconds = time.monotonic() - started
        if result.exit_code != 0:
            result.fail(f"homeport serve: exit {result.exit_code}\n{common.log_tail(log_path)}")
        if left := [pid for pid in pids if sample(pid).processes]:  # each its own session
            result.fail(f"game servers still running after homeport serve stopped: {left}")
    return result


def report(result: SoakResult) -> None:
    def listed(counts: Counter[str]) -> str:
        return "  ".join(f"{k}={v}" for k, v in sorted(counts.items()) if v) or "-"

    print(f"\nsoak  {result.database}  {result.duration:.0f} s  {result.players} players")
    print(f"  operations  {listed(result.operations)}  total={result.operations.total()}")
    print(f"  refusals, races  {listed(result.outcomes)}\n  fleet  {listed(result.fleet)}")
    print(f"  errors  {len(result.errors)}", *(f"\n    {e}" for e in result.errors[:20]), sep="")
    for metric, scale in (("rss", 1 << 20), ("fds", 1)):
        v = [getattr(s, metric) / scale for s in result.samples] or [0.0]
        *levels, flat = result.levels(metric)
        baseline, end, limit = (float(x) / scale for x in levels)
        print(
            f"  {metric + (' MiB' if scale > 1 else ''):<7}  first {v[0]:.1f}  min {min(v):.1f}"
            f"  max {max(v):.1f}  last {v[-1]:.1f}  baseline {baseline:.1f} -> end {end:.1f}"
            f"  limit {limit:.1f}  {'flat' if flat else 'GROWING'}"
        )
    processes, verdict = sorted({s.processes for s in result.samples}), result.passed
    print(f"  {len(result.samples)} samples of {processes} processes; SIGTERM -> exit", end=" ")
    print(f"{result.exit_code} in {result.stop_seconds:.1f} s\n{'PASS' if verdict else 'FAIL'}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Soak Homeport with simulated players.")
    parser.add_argument("--duration", type=int, default=600, help="seconds of play")
    parser.add_argument("--players", type=int, default=40)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    common.require_positive(parser, args := parser.parse_args())
    try:
        result = soak(args.duration, args.players, args.database)
    except common.BenchError as exc:
        print(f"soak: could not run: {exc}", file=sys.stderr)
        return 1
    report(result)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
