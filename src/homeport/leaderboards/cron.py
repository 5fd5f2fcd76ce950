"""Five-field cron schedules (`minute hour day-of-month month day-of-week`), in UTC.

Each field is `*`, a number, a range `a-b`, a step over either (`*/15`, `1-31/2`, `5/10` = from
5 to the field's end) or a comma-separated list of those. Day of week is 0-7, both 0 and 7
meaning Sunday. As in Vixie cron, when both day fields are restricted a day matches if either
does; when one of them starts with `*`, only the other one counts.

Boards use a schedule to cut time into periods: a period starts at a firing time and ends at
the next one, so the code asks for the latest firing at or before a moment and the next one
after it. Both walk field by field (skipping whole months, days and hours that cannot match),
never minute by minute over years.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

HORIZON_YEARS = 12
"""How far a search looks. Every schedule that fires at all fires within 8 years (29 February
skips 2100), so a search that finds nothing in this window would find nothing ever."""
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12))
_WEEKDAY = ("day of week", 0, 7)
_MINUTE = timedelta(minutes=1)


class CronError(ValueError):
    """The text is not a schedule this module can run."""


def _number(text: str, name: str, low: int, high: int) -> int:
    if not text.isdigit() or len(text) > 2:
        raise CronError(f"{name}: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is outside {low}-{high}")
    return value


def _item(text: str, name: str, low: int, high: int) -> range:
    base, slash, step_text = text.partition("/")
    step = _number(step_text, name, 1, high - low + 1) if slash else 1
    if base == "*":
        return range(low, high + 1, step)
    first, dash, last = base.partition("-")
    start = _number(first, name, low, high)
    if dash:
        end = _number(last, name, low, high)
        if end < start:
            raise CronError(f"{name}: the range {base} runs backwards")
    else:
        end = high if slash else start
    return range(start, end + 1, step)


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronError(f"{name}: empty item in {text!r}")
        values.update(_item(item, name, low, high))
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Monday … 6 = Sunday, as `datetime.weekday()` counts."""
    any_day: bool
    any_weekday: bool

    def _day_matches(self, moment: datetime) -> bool:
        by_day = moment.day in self.days
        by_weekday = moment.weekday() in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return by_weekday
        if self.any_weekday:
            return by_day
        return by_day or by_weekday

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last firing time at or before `moment` (UTC), or None within the horizon."""
        t = moment.astimezone(UTC).replace(second=0, microsecond=0)
        stop = t.replace(year=t.year - HORIZON_YEARS, month=1, day=1)
        while t >= stop:
            if t.month not in self.months:
                t = t.replace(day=1, hour=0, minute=0) - _MINUTE
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0) - _MINUTE
            elif t.hour not in self.hours:
                t = t.replace(minute=0) - _MINUTE
            else:
                earlier = [m for m in self.minutes if m <= t.minute]
                if earlier:
                    return t.replace(minute=max(earlier))
                t = t.replace(minute=0) - _MINUTE
        return None

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing time strictly after `moment` (UTC), or None within the horizon."""
        t = moment.astimezone(UTC).replace(second=0, microsecond=0) + _MINUTE
        stop = t.replace(year=t.year + HORIZON_YEARS, month=1, day=1)
        while t < stop:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = t.replace(year=year, month=month, day=1, hour=0, minute=0)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            else:
                later = [m for m in self.minutes if m >= t.minute]
                if later:
                    return t.replace(minute=min(later))
                t = t.replace(minute=0) + timedelta(hours=1)
        return None


def parse(text: str) -> CronSchedule:
    """The schedule `text` describes; CronError says what is wrong, including a schedule that
    never fires (such as the 30th of February)."""
    parts = text.split()
    if len(parts) != 5:
        raise CronError(f"expected 5 fields (minute hour day month weekday), got {len(parts)}")
    minutes, hours, days, months = (
        _field(part, *spec) for part, spec in zip(parts[:4], _FIELDS, strict=True)
    )
    # cron counts Sunday as 0 (or 7), Python's weekday() as 6.
    weekdays = frozenset((d - 1) % 7 for d in _field(parts[4], *_WEEKDAY))
    schedule = CronSchedule(
        text=" ".join(parts),
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=weekdays,
        any_day=parts[2].startswith("*"),
        any_weekday=parts[4].startswith("*"),
    )
    if schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise CronError("the schedule never fires")
    return schedule
