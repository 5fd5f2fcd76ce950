"""A minute of simulated players against a live `homeport serve` and its fleet (`bench/soak.py`):
leaks and lost writes show only under sustained use, so the suite runs a short soak on every
change. SQLite only and one minute, to keep the suite's time bounded; `bench/README.md` has the
ten-minute run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = str(Path(__file__).resolve().parents[2] / "bench")
sys.path.insert(0, BENCH)
try:
    import soak  # with the benchmarks, which are no package
finally:
    sys.path.remove(BENCH)  # bench's other modules have names too common to leave on the path

pytestmark = pytest.mark.e2e

DURATION, PLAYERS = 60, 20
MINIMUM = {
    "login": PLAYERS,
    "refresh": PLAYERS // 2,  # access tokens live 60 s: most players refresh once
    "browse": 100,
    "allocate": 3,
    "join": 100,
    "xp": 300,
    "quit": 100,
    "progress": 100,
    "submit": 100,
    "rank": 100,
}
"""About a fifth of what a minute does on a small machine: enough to catch a player loop that
stalls, not so much that a slow CI machine fails."""


def test_a_minute_of_players_fails_nothing_loses_nothing_and_leaks_nothing() -> None:
    result = soak.soak(DURATION, PLAYERS, "sqlite")
    soak.report(result)  # shown when the test fails
    assert result.errors == []
    done = {kind: result.operations[kind] for kind in MINIMUM}
    assert all(done[kind] >= least for kind, least in MINIMUM.items()), done
    for metric in ("rss", "fds"):
        baseline, end, limit, flat = result.levels(metric)
        assert flat, (
            f"{metric}: {baseline:.0f} after the warm-up, {end:.0f} at the end > {limit:.0f}"
        )
    assert result.fleet["stopped"] >= 1, "no match ended with its server replaced"
    assert result.exit_code == 0
    assert result.stop_seconds < soak.STOP_TIMEOUT
