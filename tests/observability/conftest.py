"""The fleet tests' live Homeport and in-process agent, for the fleet's counters."""

from __future__ import annotations

from tests.fleet.conftest import live, run_agent

__all__ = ["live", "run_agent"]
