"""`homeport demo`: the whole system on this machine, working, within a minute.

It starts `homeport serve` on the embedded default (SQLite and local disk in a temporary or
given data directory) with a fleet of the reference dedicated server and a matchmaking queue,
then plays simulated players against it (see `players`). `homeport serve` runs in a session of
its own, so Ctrl-C reaches only the demo: the players finish their rounds, then SIGTERM drains
the fleet (every game server saves its players) and stops the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from homeport.demo.players import DemoPlayer
from homeport.demo.stats import DemoStats
from homeport.demo.view import FleetWatch, show, summary

FLEET = QUEUE = "demo"
START_TIMEOUT = 60.0
PLAYERS_STOP_TIMEOUT = 60.0  # rounds in progress end: games quit, tickets are cancelled
SERVE_STOP_TIMEOUT = 120.0  # the fleet's drain grace, then the API's
STAGGER = 5.0  # seconds over which the players arrive


@dataclass
class DemoOptions:
    players: int = 50
    duration: float | None = None
    """Seconds of play; None: until Ctrl-C."""
    data_dir: Path | None = None
    """None: a temporary directory, removed at the end."""
    port: int = 8080
    game_ports: tuple[int, int] = (28000, 28999)


def backend_environment(options: DemoOptions, data_dir: Path) -> dict[str, str]:
    """The embedded default whatever the caller's environment says, plus the demo's fleet
    (matches hold 2 to 4 players; a server restarts between matches) and queue."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    servers = max(4, options.players // 2 + 2)
    fleet = {
        "port_range": list(options.game_ports),
        "scaling": {"buffer": 2, "max_servers": servers},
    }
    queue = {"fleet": FLEET, "teams": 2, "team_size": 2, "min_players": 2, "fill_after": 2.0}
    env.update(
        HOMEPORT_DATA_DIR=str(data_dir),
        HOMEPORT_FLEETS=json.dumps({FLEET: fleet}),
        HOMEPORT_MATCHMAKING_QUEUES=json.dumps({QUEUE: {**queue, "skill": None}}),
        HOMEPORT_REGISTRY_HEARTBEAT_INTERVAL="5",
    )
    return env


def homeport(*args: str) -> list[str]:
    return [sys.executable, "-m", "homeport", *args]


def admin_key(env: dict[str, str]) -> str:
    """A fresh admin key (made before the backend starts: the CLI migrates SQLite first)."""
    made = subprocess.run(
        homeport("keys", "create", "--name", f"demo-admin-{os.getpid()}", "--admin"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if made.returncode != 0:
        raise RuntimeError(f"could not create the demo's admin key:\n{made.stderr}")
    return made.stdout.split()[-1]


async def wait_healthy(url: str, serve: asyncio.subprocess.Process, log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=1.0) as http:
        while loop.time() < deadline and serve.returncode is None:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    tail = await asyncio.to_thread(log_tail, log)
    raise RuntimeError(f"homeport serve did not become ready:\n{tail}")


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


async def stop_serve(serve: asyncio.subprocess.Process) -> int | None:
    if serve.returncode is not None:
        return serve.returncode
    serve.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(serve.wait(), SERVE_STOP_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(serve.pid, signal.SIGKILL)
        await serve.wait()
        return None


async def play(
    options: DemoOptions, data_dir: Path, console: Console
) -> tuple[DemoStats, int | None]:
    env = backend_environment(options, data_dir)
    key = await asyncio.to_thread(admin_key, env)
    url = f"http://127.0.0.1:{options.port}"
    log = data_dir / "demo-serve.log"
    with log.open("ab") as output:
        serve = await asyncio.create_subprocess_exec(
            *homeport("serve", "--port", str(options.port)),
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stats, stopping = DemoStats(), asyncio.Event()
    try:
        await wait_healthy(url, serve, log)
        for text in (
            f"Homeport on {url} — data in {data_dir}, log {log}",
            f"Dashboard: {url}/admin  (admin key: {key})",
        ):
            console.print(text, highlight=False, soft_wrap=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        if options.duration is not None:
            loop.call_later(options.duration, stopping.set)
        admin = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"})
        async with admin:
            viewing = asyncio.create_task(
                show(stats, FleetWatch(admin, FLEET), url, console, stopping)
            )
            players = [
                asyncio.create_task(arrive(stats, url, i, options, stopping))
                for i in range(options.players)
            ]
            await stopping.wait()
            await viewing
            console.print("Stopping: players finish their rounds, then the fleet drains…")
            done, late = await asyncio.wait(players, timeout=PLAYERS_STOP_TIMEOUT)
            for task in late:
                task.cancel()
            for task in done:
                if task.exception() is not None:
                    stats.fail(f"player task: {task.exception()!r}")
    finally:
        exit_code = await stop_serve(serve)
    if exit_code != 0:
        stats.fail(f"homeport serve exited with {exit_code}; see {log}")
    return stats, exit_code


async def arrive(
    stats: DemoStats, url: str, index: int, options: DemoOptions, stopping: asyncio.Event
) -> None:
    """Players arrive over a few seconds, as they would, rather than all at once."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), STAGGER * index / max(1, options.players))
        return
    http = httpx.AsyncClient(base_url=url, timeout=60)
    await DemoPlayer(stats, http, index, QUEUE).run(stopping)


def run_demo(options: DemoOptions, console: Console | None = None) -> int:
    """Run it; 0 when no error happened and the backend stopped cleanly."""
    console = console or Console()
    with contextlib.ExitStack() as stack:
        if options.data_dir is None:
            data_dir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="homeport-demo-"))
            )
        else:
            data_dir = options.data_dir
            data_dir.mkdir(parents=True, exist_ok=True)
        try:
            stats, exit_code = asyncio.run(play(options, data_dir, console))
        except RuntimeError as exc:
            console.print(f"demo: {exc}", markup=False)
            return 1
        summary(stats, exit_code, console)
        return 0 if not stats.errors else 1
