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
import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
PG_CLUSTER = REPO / "scripts" / "pg-cluster"
WRK = "wrk"
TARGET_RPS = 7_500.0
TARGET_P99_MS = 20.0
WRK_THREADS = 2
WARMUP_SECONDS = 5
SIGNUP_CONCURRENCY = 32
HEALTH_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# Settings a caller's environment might hold that would point the server somewhere else.
ISOLATED_ENV = ("HOMEPORT_DB_URL", "HOMEPORT_DATA_DIR", "HOMEPORT_CONFIG", "HOMEPORT_PORT")


class BenchError(Exception):
    """Something needed for the measurement failed to run."""


@dataclasses.dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    non_200: int
    socket_errors: dict[str, int]
    sample_status: int | None
    sample_body: str | None
    raw: str


@dataclasses.dataclass(frozen=True)
class Outcome:
    db: str
    workers: int
    connections: int
    duration: int
    result: WrkResult

    @property
    def passed(self) -> bool:
        return self.result.requests_per_second >= TARGET_RPS and self.result.p99_ms < TARGET_P99_MS

    @property
    def line(self) -> str:
        r = self.result
        return (
            f"validate  {self.db:<10}  workers={self.workers}  connections={self.connections}"
            f"  duration={self.duration}s  requests/s={r.requests_per_second:.0f}"
            f"  p50={r.p50_ms:.1f}ms  p99={r.p99_ms:.1f}ms  non-2xx={r.non_2xx}"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def base_env(data_dir: Path, db_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV}
    env.update(
        HOMEPORT_DATA_DIR=str(data_dir),
        HOMEPORT_AUTH_ADDRESS_MAX_ATTEMPTS="1000000",
        HOMEPORT_LOG_LEVEL="warning",
    )
    if db_url is not None:
        env["HOMEPORT_DB_URL"] = db_url
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(
        ["homeport", *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BenchError(
            f"`homeport {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


@contextlib.contextmanager
def pg_cluster() -> Iterator[str]:
    """A throw-away PostgreSQL cluster; yields its asyncpg URL."""
    cluster_dir = Path(tempfile.mkdtemp(prefix="homeport-bench-pg-"))
    try:
        proc = subprocess.run(
            ["bash", str(PG_CLUSTER), "start", str(cluster_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise BenchError(f"pg-cluster start exited {proc.returncode}:\n{proc.stderr}")
        match = re.search(r"HOMEPORT_TEST_POSTGRES_URL=(\S+)", proc.stdout)
        if match is None:
            raise BenchError(f"pg-cluster start printed no URL:\n{proc.stdout}{proc.stderr}")
        yield match.group(1).strip("'\"")
    finally:
        subprocess.run(
            ["bash", str(PG_CLUSTER), "stop", str(cluster_dir)],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(cluster_dir, ignore_errors=True)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        # The server runs in its own session; take its worker processes down with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def server(env: dict[str, str], cwd: Path, port: int, workers: int) -> Iterator[str]:
    """A running `homeport serve`; yields its base URL."""
    log_path = cwd / "server.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["homeport", "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + HEALTH_TIMEOUT
            while True:
                if proc.poll() is not None:
                    raise BenchError(
                        f"server exited {proc.returncode} before it was healthy:\n"
                        + log_tail(log_path)
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"server not healthy after {HEALTH_TIMEOUT:.0f}s:\n" + log_tail(log_path)
                    )
                time.sleep(0.2)
            yield base
        finally:
            stop_process(proc)


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


def lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def wrk_script(server_key: str, tokens: list[str]) -> str:
    """Lua for wrk: POST with the server key, no Content-Type, one player token per request."""
    bodies = ",\n".join("  " + lua_string('{"player_token": "' + token + '"}') for token in tokens)
    return f"""\
wrk.method = "POST"
wrk.headers["Authorization"] = {lua_string("Bearer " + server_key)}
wrk.headers["Content-Type"] = nil

local bodies = {{
{bodies}
}}

local threads = {{}}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_index", thread_count)
  table.insert(threads, thread)
end

local prepared = {{}}
local counter = 0
non200 = 0
sample_status = 0
sample_body = ""

function init(args)
  for i, body in ipairs(bodies) do
    prepared[i] = wrk.format(nil, nil, nil, body)
  end
  counter = ((thread_index or 1) - 1) * math.floor(#prepared / 2)
end

function request()
  counter = counter % #prepared + 1
  return prepared[counter]
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if sample_status == 0 then
      sample_status = status
      sample_body = body or ""
    end
  end
end

function done(summary, latency, requests)
  local total = 0
  local status = 0
  local body = ""
  for _, thread in ipairs(threads) do
    total = total + (thread:get("non200") or 0)
    local s = thread:get("sample_status") or 0
    if status == 0 and s ~= 0 then
      status = s
      body = thread:get("sample_body") or ""
    end
  end
  io.write(string.format("bench-non200: %d\\n", total))
  if status ~= 0 then
    io.write(string.format("bench-sample-status: %d\\n", status))
    io.write("bench-sample-body: " .. string.gsub(body, "\\n", " ") .. "\\n")
  end
end
"""


TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def to_ms(value: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", value)
    if match is None:
        raise BenchError(f"unrecognised wrk time {value!r}")
    return float(match.group(1)) * TIME_UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if rps is None or p50 is None or p99 is None:
        raise BenchError(f"could not read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    non_200 = re.search(r"^bench-non200:\s+(\d+)", output, re.M)
    socket_errors: dict[str, int] = {}
    errors = re.search(r"Socket errors:\s+(.*)$", output, re.M)
    if errors is not None:
        for name, number in re.findall(r"(\w+) (\d+)", errors.group(1)):
            socket_errors[name] = int(number)
    status = re.search(r"^bench-sample-status:\s+(\d+)", output, re.M)
    body = re.search(r"^bench-sample-body: (.*)$", output, re.M)
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        p50_ms=to_ms(p50.group(1)),
        p99_ms=to_ms(p99.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        non_200=int(non_200.group(1)) if non_200 else 0,
        socket_errors=socket_errors,
        sample_status=int(status.group(1)) if status else None,
        sample_body=body.group(1) if body else None,
        raw=output,
    )


def run_wrk(url: str, script: Path, connections: int, duration: int) -> WrkResult:
    threads = min(WRK_THREADS, connections)
    args = [WRK, "-t", str(threads), "-c", str(connections), "-d", f"{duration}s"]
    args += ["--timeout", "10s", "--latency", "-s", str(script), url]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"wrk exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return parse_wrk(proc.stdout)


def bench_one(db: str, args: argparse.Namespace) -> Outcome:
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="homeport-bench-")))
        data_dir = work / "data"
        data_dir.mkdir()
        db_url = stack.enter_context(pg_cluster()) if db == "postgresql" else None
        env = base_env(data_dir, db_url)
        if db_url is not None:
            run_cli(["migrate"], env, work)
        base = stack.enter_context(server(env, work, free_port(), args.workers))
        key_output = run_cli(
            ["keys", "create", "--name", "bench", "--scopes", "validate"], env, work
        )
        lines = key_output.strip().splitlines()
        server_key = lines[-1].strip() if lines else ""
        if not server_key.startswith("hp_sk_"):
            raise BenchError(f"no server key in `homeport keys create` output:\n{key_output}")

        started = time.monotonic()
        tokens = asyncio.run(create_players(base, args.players))
        print(f"  {db}: {len(tokens)} players in {time.monotonic() - started:.1f}s", flush=True)

        script = work / "validate.lua"
        script.write_text(wrk_script(server_key, tokens))
        url = f"{base}/v1/validate"
        run_wrk(url, script, args.connections, WARMUP_SECONDS)
        result = run_wrk(url, script, args.connections, args.duration)
        return Outcome(db, args.workers, args.connections, args.duration, result)
    raise AssertionError("unreachable")


def report(outcome: Outcome) -> None:
    r = outcome.result
    print(outcome.line, flush=True)
    errors = {name: n for name, n in r.socket_errors.items() if n}
    if errors:
        listed = ", ".join(f"{name}={n}" for name, n in errors.items())
        print(f"  socket errors: {listed}")
    if r.non_200:
        print(f"  non-200 responses counted by the script: {r.non_200}")
    if r.sample_status is not None:
        print(f"  sample non-200 response: {r.sample_status} {r.sample_body}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--duration", type=int, default=15, help="seconds of measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--players", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    args = parser.parse_args(argv)
    for name in ("duration", "connections", "players", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which(WRK) is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 1
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(
        f"POST /v1/validate: workers={args.workers} connections={args.connections}"
        f" wrk threads={min(WRK_THREADS, args.connections)} duration={args.duration}s"
        f" players={args.players} cores={os.cpu_count()}",
        flush=True,
    )
    outcomes: list[Outcome] = []
    failed = False
    for db in dbs:
        try:
            outcome = bench_one(db, args)
        except BenchError as exc:
            print(f"validate  {db:<10}  FAILED: {exc}", file=sys.stderr, flush=True)
            failed = True
            continue
        report(outcome)
        outcomes.append(outcome)

    print()
    print(f"target: >= {TARGET_RPS:,.0f} requests/s and p99 < {TARGET_P99_MS:.0f} ms")
    for outcome in outcomes:
        r = outcome.result
        verdict = "PASS" if outcome.passed else "MISS"
        print(
            f"  {outcome.db:<10}  {verdict}  requests/s={r.requests_per_second:.0f}"
            f"  p99={r.p99_ms:.1f}ms"
        )
        if r.non_2xx or r.non_200:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
