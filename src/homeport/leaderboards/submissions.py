"""What a group of submissions does to the records: the operators, without any I/O.

Submissions for the same record apply in arrival order, each seeing the one before, and each
gets the record as it stands after it. A record's `reached_us` moves only when its score or
subscore changes: of two equal records, the one that got there first ranks higher.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from homeport.errors import HomeportError
from homeport.identity.errors import PlayerNotFound
from homeport.leaderboards.boards import BoardRule
from homeport.leaderboards.errors import LeaderboardNotFound, ScoreOutOfRange
from homeport.leaderboards.feed import Change
from homeport.leaderboards.periods import Period
from homeport.leaderboards.ranks import SCORE_LIMIT, standing_key
from homeport.leaderboards.schemas import Operator

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RecordKey = tuple[str, str, uuid.UUID]
"""(board id, period, player id)"""


def micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class Submission:
    board_id: str
    player_id: uuid.UUID
    score: int
    subscore: int
    metadata: str
    """Compact JSON, already checked."""


@dataclass(slots=True)
class Stored:
    """A record's values, as read from the database or as they are to be written."""

    score: int
    subscore: int
    metadata: str
    reached_us: int
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class Result:
    board_id: str
    period: str
    player_id: uuid.UUID
    record: Stored
    changed: bool
    rule: BoardRule
    """The board's rules as the group read them (the board of that id at that moment)."""

    @property
    def change(self) -> Change:
        """The record's standing and version, for the change feed."""
        sign, row = self.rule.sign, self.record
        key = standing_key(
            row.score * sign, row.subscore * sign, row.reached_us, self.player_id.int
        )
        return Change(self.board_id, self.period, key, row.version)


def written(outcomes: Iterable[Result | HomeportError]) -> list[Result]:
    """One outcome per record the group changed: the last, which holds the row as written
    (submissions of one record in one group share one version step)."""
    last: dict[RecordKey, Result] = {}
    for outcome in outcomes:
        if isinstance(outcome, Result) and outcome.changed:
            last[(outcome.board_id, outcome.period, outcome.player_id)] = outcome
    return list(last.values())


@dataclass(slots=True)
class Plan:
    """What a group comes to: each submission's outcome, and the rows to write."""

    outcomes: list[Result | HomeportError]
    writes: dict[RecordKey, Stored]
    periods: dict[tuple[str, str], tuple[BoardRule, Period]]


def periods_of(
    group: list[Submission], boards: dict[str, BoardRule], now: datetime
) -> dict[str, Period]:
    return {b: boards[b].period_at(now) for b in {s.board_id for s in group} if b in boards}


def _combine(
    rule: BoardRule, old: Stored | None, sub: Submission, now: datetime, now_us: int
) -> Stored | HomeportError | None:
    """The record after `sub`; None when it stays as it is."""
    if old is None:
        return Stored(sub.score, sub.subscore, sub.metadata, now_us, now, 1)
    if rule.operator is Operator.BEST:
        if not rule.is_better(sub.score, sub.subscore, old.score, old.subscore):
            return None
        score, subscore = sub.score, sub.subscore
    elif rule.operator is Operator.LATEST:
        score, subscore = sub.score, sub.subscore
    else:
        score, subscore = old.score + sub.score, old.subscore + sub.subscore
        if abs(score) > SCORE_LIMIT or abs(subscore) > SCORE_LIMIT:
            return ScoreOutOfRange()
    moved = (score, subscore) != (old.score, old.subscore)
    reached = now_us if moved else old.reached_us
    return Stored(score, subscore, sub.metadata, reached, now, old.version + 1)


def plan(
    group: list[Submission],
    boards: dict[str, BoardRule],
    players: set[uuid.UUID],
    current: dict[RecordKey, Stored],
    now: datetime,
) -> Plan:
    now_us = micros(now)
    periods = periods_of(group, boards, now)
    result = Plan([], {}, {})
    for sub in group:
        rule = boards.get(sub.board_id)
        if rule is None:
            result.outcomes.append(LeaderboardNotFound())
            continue
        if sub.player_id not in players:
            result.outcomes.append(PlayerNotFound())
            continue
        period = periods[sub.board_id]
        key = (sub.board_id, period.key, sub.player_id)
        old = result.writes.get(key) or current.get(key)
        new = _combine(rule, old, sub, now, now_us)
        if isinstance(new, HomeportError):
            result.outcomes.append(new)
            continue
        if new is None:
            assert old is not None
            result.outcomes.append(
                Result(sub.board_id, period.key, sub.player_id, old, False, rule)
            )
            continue
        if key in result.writes:  # one row write per record: one version step
            new.version = result.writes[key].version
        result.writes[key] = new
        result.periods[(sub.board_id, period.key)] = (rule, period)
        result.outcomes.append(Result(sub.board_id, period.key, sub.player_id, new, True, rule))
    return result
