"""Run the real `homeport` command: a live server subprocess and CLI calls, on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

from tests.conftest import FAST_HASHING

HOMEPORT = [sys.executable, "-m", "homeport"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def environment(data_dir: Path, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env["HOMEPORT_DATA_DIR"] = str(data_dir)
    env["HOMEPORT_DB_URL"] = db_url
    env["HOMEPORT_LOG_LEVEL"] = "warning"
    for name, value in FAST_HASHING.items():
        env[f"HOMEPORT_{name.upper()}"] = str(value)
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*HOMEPORT, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"homeport {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


class LiveServer:
    """`homeport serve` on a free port. Its output is piped, or written to `log` when the test
    reads it (a pipe nobody reads would block a chatty server)."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        serve_args: tuple[str, ...] = (),
        log: Path | None = None,
        stop_timeout: float = 20,
        new_session: bool = False,
    ) -> None:
        self.env = env
        self.new_session = new_session
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.serve_args = serve_args
        self.log = log
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[str] | None = None

    def _output(self) -> str:
        if self.log is not None:
            return self.log.read_text()
        assert self.process is not None
        assert self.process.stdout is not None
        return self.process.stdout.read()

    def start(self) -> Self:
        command = [*HOMEPORT, "serve", "--port", str(self.port), *self.serve_args]
        if self.log is None:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=self.new_session,
            )
        else:
            with self.log.open("wb") as log:
                self.process = subprocess.Popen(
                    command,
                    env=self.env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    text=True,
                    start_new_session=self.new_session,
                )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"homeport serve exited:\n{self._output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("homeport serve did not become healthy in 30 s")

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def raw(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send exact bytes, as a game engine would, and read one HTTP/1.1 response."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            length = int(headers.get("content-length", "0"))
            while len(body) < length:
                body += sock.recv(65536)
            return status, headers, body
