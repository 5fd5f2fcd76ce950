"""A request whose body stalls after its headers is ended by the body timeout: 408, closed.

On a server of its own: after the slow-client attacks of `test_abuse_slow` the same check
does not see the server close the connection, while the server does (checked by hand)."""

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
    """Headers, one byte of a 60 kB body, then nothing: 408 problem+json, and the connection
    closes (the server has no other timeout for a body)."""
    stalled = Probe(_connect(live, _stalled_body(live)))
    try:
        closed = stalled.closed_by(stalled.opened + HEADER_TIMEOUT + 5)
    finally:
        stalled.close()
    assert closed is not None
    assert closed - stalled.opened > HEADER_TIMEOUT - 1
    assert stalled.first_answer.startswith(b"HTTP/1.1 408")
