"""Tables of the leaderboards."""

from __future__ import annotations
