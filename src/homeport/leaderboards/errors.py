"""Leaderboard refusals, each with a stable `type` slug."""

from __future__ import annotations

from homeport.errors import Conflict, NotFound, UnprocessableContent


class LeaderboardNotFound(NotFound):
    slug = "leaderboard-not-found"
    title = "No leaderboard has this id"


class LeaderboardExists(Conflict):
    slug = "leaderboard-exists"
    title = "A leaderboard with this id exists"


class RecordNotFound(NotFound):
    slug = "record-not-found"
    title = "The player has no record on this leaderboard in this period"


class PeriodNotFound(NotFound):
    slug = "period-not-found"
    title = "This leaderboard has no such period"


class ScoreOutOfRange(UnprocessableContent):
    slug = "score-out-of-range"
    title = "The resulting score or subscore is beyond ±(2^53 - 1)"
