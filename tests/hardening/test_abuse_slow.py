"""Slow clients against a live `homeport serve`: slowloris heads, stalled bodies, silent
connections.

What protects the server is Granian's, not the database's, so one SQLite server serves the
module. Granian keeps one of a worker's `backpressure` slots (backlog // workers = 1024) for
each open connection, and closes a connection whose request head is not complete within its
HTTP/1 `header_read_timeout` (30 s, which also ends idle keep-alive connections). The probes
of that timeout are opened with the module's first test and watched from threads, so that the
one wait for it overlaps the other tests; the tests that read them come last.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass

import httpx
import pytest

from tests.hardening.test_abuse import Live, live_server

pytestmark = pytest.mark.e2e
HEADER_TIMEOUT = 10.0
"""The server's header and body timeouts here (30 s by default): short, to keep the test short."""
ATTACKERS = 200
SLOTS = 1024
"""Connections one worker holds at once: Granian's backlog (1024) // workers (1)."""
P99_LIMIT = 0.25
"""Seconds; an idle server answers in about 1 ms, a blocked one not at all."""


class Probe:
    """A connection watched from a thread of its own, so that when the server ends it is known
    to the moment, whatever the tests do meanwhile."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.opened = time.monotonic()
        self.closed_at: float | None = None
        self.answered_at: float | None = None
        self.first_answer = b""
        self.watch = threading.Thread(target=self._watch, daemon=True)
        self.watch.start()

    def _watch(self) -> None:
        self.sock.settimeout(HEADER_TIMEOUT + 15)
        try:
            while data := self.sock.recv(65536):  # an answer, if any, then the end
                if not self.first_answer:
                    self.first_answer, self.answered_at = data, time.monotonic()
        except TimeoutError:
            return
        except OSError:
            pass
        self.closed_at = time.monotonic()

    def closed_by(self, deadline: float) -> float | None:
        """When the server ended the connection, if it did before `deadline`."""
        self.watch.join(max(0.0, deadline - time.monotonic()))
        return self.closed_at if self.closed_at and self.closed_at <= deadline else None

    def answered_by(self, deadline: float) -> float | None:
        """When the server's first bytes came, if they came before `deadline`."""
        while self.answered_at is None and time.monotonic() < deadline and self.watch.is_alive():
            time.sleep(0.05)
        return self.answered_at if self.answered_at and self.answered_at <= deadline else None

    def close(self) -> None:
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@dataclass
class Probes:
    partial_head: Probe
    keep_alive: Probe
    silent: Probe


def _connect(live: Live, payload: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.server.port), timeout=10)
    if payload:
        sock.sendall(payload)
    return sock


def _partial_head(live: Live) -> bytes:
    return f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{live.server.port}\r\nX-Slow: ".encode()


def _stalled_body(live: Live, method: str = "POST", path: str = "/v1/auth/login") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{live.server.port}\r\n"
        f"Authorization: Bearer {live.admin}\r\n"
        "Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"
    ).encode()


def _descriptors() -> int:
    """Open files this process (and a server it starts) may have, raised as far as allowed:
    the attacks below need over a thousand sockets on each side."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * SLOTS if hard == resource.RLIM_INFINITY else min(hard, 4 * SLOTS)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return max(soft, wanted)


@pytest.fixture(scope="module", params=["sqlite"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    _descriptors()  # before the server starts, so that it inherits the limit
    timeouts = {
        "HOMEPORT_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "HOMEPORT_HTTP_BODY_TIMEOUT": str(HEADER_TIMEOUT),
    }
    with live_server(request, tmp_path_factory, **timeouts) as server:
        yield server


@pytest.fixture(scope="module")
def probes(live: Live) -> Iterator[Probes]:
    keep_alive = _connect(live, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert keep_alive.recv(65536).startswith(b"HTTP/1.1 200")
    made = Probes(
        partial_head=Probe(_connect(live, _partial_head(live))),
        keep_alive=Probe(keep_alive),
        silent=Probe(_connect(live)),
    )
    yield made
    for probe in (made.partial_head, made.keep_alive, made.silent):
        probe.close()


def _latencies(live: Live) -> list[float]:
    """/healthz over one keep-alive connection, and on fresh connections, in seconds."""
    seen = []
    with httpx.Client(base_url=live.url, timeout=5) as http:
        for _ in range(200):
            started = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            seen.append(time.perf_counter() - started)
    request = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    for _ in range(50):
        started = time.perf_counter()
        with _connect(live, request) as sock:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        seen.append(time.perf_counter() - started)
    return sorted(seen)


def _p99(latencies: list[float]) -> float:
    return latencies[int(len(latencies) * 0.99) - 1]


def _under_attack(live: Live, payloads: list[bytes], trickle: bytes) -> list[float]:
    """Latencies while each payload's connection sends one more `trickle` byte every 0.2 s."""
    done = threading.Event()
    with ExitStack() as stack:
        socks = [stack.enter_context(_connect(live, payload)) for payload in payloads]

        def drip() -> None:
            while not done.wait(0.2):
                for sock in socks:
                    with suppress(OSError):
                        sock.send(trickle)

        dripping = threading.Thread(target=drip)
        dripping.start()
        try:
            latencies = _latencies(live)
        finally:
            done.set()
            dripping.join()
        # The attack was in place throughout: no attacker was answered or let go.
        assert not any(_pending_answer(sock) for sock in socks)
        return latencies


def _pending_answer(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return False
    return True


def test_slowloris_heads_do_not_delay_other_clients(live: Live, probes: Probes) -> None:
    latencies = _under_attack(live, [_partial_head(live)] * ATTACKERS, b"a")
    assert _p99(latencies) < P99_LIMIT, latencies[-5:]


def test_stalled_bodies_do_not_delay_other_clients(live: Live, probes: Probes) -> None:
    with httpx.Client(base_url=live.url, timeout=5) as http:
        device = http.post("/v1/auth/device", json={"device_id": "slow-body-device-0001"})
    document = f"/v1/players/{device.json()['player']['id']}/data/progress/k"
    # A FastAPI route and two bare endpoints, each past authentication and reading the body.
    calls = [("POST", "/v1/auth/login"), ("POST", "/v1/validate"), ("PUT", document)]
    payloads = [_stalled_body(live, *calls[n % 3]) for n in range(ATTACKERS)]
    latencies = _under_attack(live, payloads, b" ")
    assert _p99(latencies) < P99_LIMIT, latencies[-5:]


def _answers(live: Live, within: float) -> bool:
    try:
        return httpx.get(live.url + "/healthz", timeout=within).status_code == 200
    except httpx.TimeoutException:
        return False


def test_silent_connections_cannot_take_the_worker_out_of_service(
    live: Live, probes: Probes
) -> None:
    if _descriptors() < SLOTS + 200:
        pytest.skip("too few file descriptors allowed to hold a worker's slots")
    with ExitStack() as stack:
        for _ in range(SLOTS + 50):
            stack.enter_context(_connect(live))
        time.sleep(0.5)
        held = _answers(live, within=3)
    deadline = time.monotonic() + 10
    while not _answers(live, within=1):  # pytest.fail: not the expected failure
        if time.monotonic() > deadline:
            pytest.fail("the server did not answer again once the connections closed")
    assert held, f"no answer while {SLOTS + 50} silent connections were open"


def test_partial_heads_and_idle_keep_alives_are_closed_by_the_header_timeout(
    probes: Probes,
) -> None:
    head = probes.partial_head
    closed = head.closed_by(head.opened + HEADER_TIMEOUT + 10)
    assert closed is not None
    assert HEADER_TIMEOUT - 2 < closed - head.opened < HEADER_TIMEOUT + 5
    assert probes.keep_alive.closed_by(closed + 2) is not None


def test_a_connection_that_never_speaks_is_closed_like_a_partial_head(probes: Probes) -> None:
    silent = probes.silent
    assert silent.closed_by(silent.opened + HEADER_TIMEOUT + 5) is not None
