"""A request whose body stalls after its headers is ended by the body timeout: a 408 that says
`Connection: close`, and the request's work and buffers are released.

Whether the socket itself then closes at once is up to the HTTP server: Granian has no timeout
of its own for a request body and sometimes keeps such a connection open until the client goes
(emmett-framework/granian#728, "wontfix"). That part is the reverse proxy's job in production
(`docs/operations.md`); this test checks what Homeport controls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hardening.test_abuse import Live, live_server
from tests.hardening.test_abuse_slow import HEADER_TIMEOUT, Probe, _connect, _stalled_body

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["sqlite"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    timeouts = {
        "HOMEPORT_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "HOMEPORT_HTTP_BODY_TIMEOUT": str(HEADER_TIMEOUT),
    }
    with live_server(request, tmp_path_factory, **timeouts) as server:
        yield server


def test_a_stalled_body_is_ended_within_the_body_timeout(live: Live) -> None:
    """Headers, one byte of a 60 kB body, then nothing: 408 problem+json after the body
    timeout, telling the client the connection closes."""
    stalled = Probe(_connect(live, _stalled_body(live)))
    try:
        answered = stalled.answered_by(stalled.opened + HEADER_TIMEOUT + 5)
    finally:
        stalled.close()
    assert answered is not None
    assert answered - stalled.opened > HEADER_TIMEOUT - 1
    head = stalled.first_answer.lower()
    assert head.startswith(b"http/1.1 408")
    assert b"connection: close" in head
    assert b"application/problem+json" in head
