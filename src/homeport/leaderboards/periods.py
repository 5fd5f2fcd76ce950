"""Which period a moment belongs to, for each reset schedule (all in UTC).

A period is named by the moment it starts, written `2030-01-06T00:00:00Z`; a board that never
resets has one period, `all`. Names sort in time order, so the newest season is the largest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from homeport.leaderboards import cron

ALL_TIME = "all"
KEY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class Reset(StrEnum):
    NEVER = "never"
    DAILY = "daily"
    WEEKLY = "weekly"
    """Monday 00:00 UTC."""
    MONTHLY = "monthly"
    CRON = "cron"


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    starts_at: datetime | None
    ends_at: datetime | None

    def holds(self, moment: datetime) -> bool:
        after_start = self.starts_at is None or self.starts_at <= moment
        return after_start and (self.ends_at is None or moment < self.ends_at)


ALL = Period(ALL_TIME, None, None)


def key_of(start: datetime) -> str:
    return start.astimezone(UTC).strftime(KEY_FORMAT)


def parse_key(text: str) -> datetime | None:
    """The start a period name stands for (None for `all`); ValueError if it is not a name."""
    if text == ALL_TIME:
        return None
    moment = datetime.strptime(text, KEY_FORMAT).replace(tzinfo=UTC)
    if key_of(moment) != text:
        raise ValueError("not a period name")
    return moment


def _month_after(start: datetime) -> datetime:
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


class Schedule:
    """A board's reset rule; remembers the current period, which most calls ask for."""

    def __init__(self, reset: Reset, cron_text: str | None) -> None:
        self.reset = reset
        self.cron = cron.parse(cron_text) if reset is Reset.CRON and cron_text else None
        if reset is Reset.CRON and self.cron is None:
            raise cron.CronError("a cron reset needs a schedule")
        self._current = ALL

    def period_at(self, moment: datetime) -> Period:
        if self.reset is Reset.NEVER:
            return ALL
        if self._current is not ALL and self._current.holds(moment):
            return self._current
        period = self._compute(moment.astimezone(UTC))
        self._current = period
        return period

    def _compute(self, now: datetime) -> Period:
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.reset is Reset.DAILY:
            return Period(key_of(day), day, day + timedelta(days=1))
        if self.reset is Reset.WEEKLY:
            monday = day - timedelta(days=day.weekday())
            return Period(key_of(monday), monday, monday + timedelta(days=7))
        if self.reset is Reset.MONTHLY:
            first = day.replace(day=1)
            return Period(key_of(first), first, _month_after(first))
        assert self.cron is not None
        start = self.cron.latest_at_or_before(now)
        if start is None:  # cannot happen for a schedule `cron.parse` accepted
            raise cron.CronError("the schedule has not fired within the horizon")
        return Period(key_of(start), start, self.cron.next_after(start))

    def period_named(self, key: str) -> Period:
        """The period called `key` (ValueError when this schedule has no such period)."""
        start = parse_key(key)
        if start is None:
            if self.reset is not Reset.NEVER:
                raise ValueError("only a board that never resets has the period 'all'")
            return ALL
        if self.reset is Reset.NEVER:
            raise ValueError("a board that never resets has only the period 'all'")
        period = self._compute(start)
        if period.key != key:
            raise ValueError("no period of this board starts then")
        return period
