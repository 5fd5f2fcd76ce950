"""`homeport serve` with a fleet: the HTTP server runs as a child process, the fleet agent here.

The order of shutdown is the point. On SIGTERM the agent drains the local game servers first,
while the API still answers their last saves and deregistrations; only then is the HTTP server
stopped (it finishes the requests in flight). Were the agent inside the HTTP server, the API
would close before the servers could save their players.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
from collections.abc import Sequence

import httpx

from homeport.clock import SystemClock
from homeport.fleet.agent import FleetAgent
from homeport.observability import logs
from homeport.settings import Settings

log = logging.getLogger("homeport.supervisor")
API_START_TIMEOUT = 30.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: if this supervisor dies (even by SIGKILL), the kernel sends
    the HTTP server SIGTERM, so it never outlives its supervisor holding the port."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def _api_up(settings: Settings, child: asyncio.subprocess.Process) -> None:
    """Wait until the API answers, so the first servers started can register at once."""
    url = f"{settings.url_for_servers}/healthz"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + API_START_TIMEOUT
    async with httpx.AsyncClient(timeout=1.0) as client:
        while loop.time() < deadline and child.returncode is None:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)


async def supervise(settings: Settings, api_argv: Sequence[str], grace: float) -> int:
    child = await asyncio.create_subprocess_exec(
        *api_argv,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    child_done = asyncio.ensure_future(child.wait())
    await _api_up(settings, child)
    agent = FleetAgent(settings, SystemClock())
    agent_task = asyncio.create_task(agent.run(stop), name="fleet-agent")
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({child_done, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if child_done.done():
        log.error("the HTTP server exited with status %s: stopping the fleet", child.returncode)
    stop.set()
    with contextlib.suppress(Exception):
        await agent_task
    if child.returncode is None:
        child.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child_done, grace + 10)
        except TimeoutError:
            child.kill()
            await child.wait()
    code = child.returncode or 0
    # Killed by the SIGTERM we sent counts as a clean stop.
    return 0 if code == -signal.SIGTERM else code


def run(settings: Settings, api_argv: Sequence[str], grace: float) -> int:
    logs.configure(settings)
    try:
        import uvloop

        return uvloop.run(supervise(settings, api_argv, grace))
    except ImportError:  # pragma: no cover - uvloop comes with granian[uvloop]
        return asyncio.run(supervise(settings, api_argv, grace))


def api_argv(host: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "homeport",
        "serve",
        "--api-only",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
