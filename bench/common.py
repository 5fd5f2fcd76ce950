"""What the benchmarks share: a live `homeport serve` per database, and `wrk` with a Lua harness.

Every benchmark measures the real thing, a `homeport serve` subprocess on a free port in a
temporary data directory, so the figures include HTTP parsing, the worker processes and the
database exactly as deployed. PostgreSQL runs as a throw-away cluster (`scripts/pg-cluster`) so
a run never touches a developer's database, and the caller's `HOMEPORT_*` settings that could
point the server elsewhere are dropped.

The Lua harness counts answers other than 200 itself: wrk only reports "non-2xx or 3xx", which
would let a stray redirect or 201 pass unnoticed, and it keeps one such answer to show why.
"""

from __future__ import annotations

import argparse
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
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from wrk_script import lua_string as lua_string
from wrk_script import wrk_lua as wrk_lua

REPO = Path(__file__).resolve().parent.parent
PG_CLUSTER = REPO / "scripts" / "pg-cluster"
WRK = "wrk"
WRK_THREADS = 2
HEALTH_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# Settings a caller's environment might hold that would point the server somewhere else.
ISOLATED_ENV = ("HOMEPORT_DB_URL", "HOMEPORT_DATA_DIR", "HOMEPORT_CONFIG", "HOMEPORT_PORT")
DATABASES = ("sqlite", "postgresql")


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
class Measurement:
    """One measured wrk run and the target it is compared with."""

    name: str
    db: str
    workers: int
    connections: int
    duration: int
    result: WrkResult
    target_p99_ms: float
    target_rps: float | None = None
    rate_name: str = "requests/s"

    @property
    def passed(self) -> bool:
        r = self.result
        fast_enough = self.target_rps is None or r.requests_per_second >= self.target_rps
        return fast_enough and r.p99_ms < self.target_p99_ms

    @property
    def answered_wrong(self) -> bool:
        return bool(self.result.non_2xx or self.result.non_200)

    def line(self, name_width: int = 0) -> str:
        r = self.result
        return (
            f"{self.name.ljust(name_width)}  {self.db:<10}  workers={self.workers}"
            f"  connections={self.connections}  duration={self.duration}s"
            f"  {self.rate_name}={r.requests_per_second:.0f}"
            f"  p50={r.p50_ms:.1f}ms  p99={r.p99_ms:.1f}ms  non-2xx={r.non_2xx}"
        )


@dataclasses.dataclass(frozen=True)
class Live:
    """A running server: its scratch directory, its (and the CLI's) environment, its URL."""

    work: Path
    env: dict[str, str]
    base: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def base_env(data_dir: Path, db_url: str | None, settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV}
    env.update(
        HOMEPORT_DATA_DIR=str(data_dir),
        HOMEPORT_AUTH_ADDRESS_MAX_ATTEMPTS="1000000",
        HOMEPORT_LOG_LEVEL="warning",
    )
    env.update(settings)
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


def start(
    stack: contextlib.ExitStack, db: str, workers: int, settings: dict[str, str] | None = None
) -> Live:
    """A fresh server on `db` with extra `HOMEPORT_*` settings, torn down when `stack` closes."""
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="homeport-bench-")))
    data_dir = work / "data"
    data_dir.mkdir()
    db_url = stack.enter_context(pg_cluster()) if db == "postgresql" else None
    env = base_env(data_dir, db_url, settings or {})
    if db_url is not None:
        run_cli(["migrate"], env, work)
    base = stack.enter_context(server(env, work, free_port(), workers))
    return Live(work, env, base)


def create_key(live: Live, scopes: str) -> str:
    """A new server key with `scopes` (comma-separated), as `homeport keys create` prints it."""
    output = run_cli(["keys", "create", "--name", "bench", "--scopes", scopes], live.env, live.work)
    lines = output.strip().splitlines()
    key = lines[-1].strip() if lines else ""
    if not key.startswith("hp_sk_"):
        raise BenchError(f"no server key in `homeport keys create` output:\n{output}")
    return key


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


def report(measurement: Measurement, name_width: int = 0) -> None:
    r = measurement.result
    print(measurement.line(name_width), flush=True)
    errors = {name: n for name, n in r.socket_errors.items() if n}
    if errors:
        listed = ", ".join(f"{name}={n}" for name, n in errors.items())
        print(f"  socket errors: {listed}")
    if r.non_200:
        print(f"  non-200 responses counted by the script: {r.non_200}")
    if r.sample_status is not None:
        print(f"  sample non-200 response: {r.sample_status} {r.sample_body}")


def run_each(name: str, choice: str, run: Callable[[str], bool | None]) -> bool:
    """`run(db)` on each chosen database, going on after a failure; True when any failed (a
    `BenchError`, or `run` answering False)."""
    failed = False
    for db in databases(choice):
        try:
            if run(db) is False:
                failed = True
        except BenchError as exc:
            print(f"{name}  {db:<10}  FAILED: {exc}", file=sys.stderr, flush=True)
            failed = True
    return failed


def summarise(targets: str, measured: list[Measurement], name_width: int = 0) -> bool:
    """Print `targets` and a PASS/MISS line per measurement; True when any answer was wrong."""
    print()
    print(targets)
    wrong = False
    for m in measured:
        r = m.result
        verdict = "PASS" if m.passed else "MISS"
        name = f"  {m.name:<{name_width}}" if name_width else ""
        print(
            f"  {m.db:<10}{name}  {verdict}"
            f"  {m.rate_name}={r.requests_per_second:.0f}  p99={r.p99_ms:.1f}ms"
        )
        wrong = wrong or m.answered_wrong
    return wrong


def add_run_options(parser: argparse.ArgumentParser, *, duration: int, connections: int) -> None:
    parser.add_argument("--db", choices=(*DATABASES, "both"), default="both")
    parser.add_argument("--duration", type=int, default=duration, help="seconds of measurement")
    parser.add_argument("--connections", type=int, default=connections)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")


def require_positive(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every integer option must be at least 1 (wrk and the server refuse 0)."""
    for name, value in vars(args).items():
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")


def databases(choice: str) -> list[str]:
    return list(DATABASES) if choice == "both" else [choice]


def wrk_missing() -> bool:
    if shutil.which(WRK) is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return True
    return False
