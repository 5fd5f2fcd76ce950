"""The five-field cron parser and its firing times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from homeport.leaderboards.cron import CronError, parse


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", set(range(60))),
        ("5", {5}),
        ("1,2,40", {1, 2, 40}),
        ("10-12", {10, 11, 12}),
        ("*/15", {0, 15, 30, 45}),
        ("10-30/10", {10, 20, 30}),
        ("50/5", {50, 55}),
        ("1-3,*/30", {0, 1, 2, 3, 30}),
    ],
)
def test_minute_field_syntax(field: str, expected: set[int]) -> None:
    assert parse(f"{field} * * * *").minutes == expected


def test_weekdays_count_sunday_as_0_and_7() -> None:
    schedule = parse("0 0 * * 0,7,1")
    assert schedule.weekdays == {6, 0}  # Python: Monday 0 … Sunday 6


@pytest.mark.parametrize(
    "text",
    [
        "",
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 8",
        "5-1 * * * *",
        "*/0 * * * *",
        "a * * * *",
        "1,,2 * * * *",
        "-1 * * * *",
        "0 0 30 2 *",
        "0 0 31 4,6,9,11 *",
    ],
)
def test_bad_schedules_are_refused(text: str) -> None:
    with pytest.raises(CronError):
        parse(text)


@pytest.mark.parametrize(
    ("text", "now", "latest", "following"),
    [
        ("0 0 * * *", "2030-01-01T12:34", "2030-01-01T00:00", "2030-01-02T00:00"),
        ("0 0 * * *", "2030-01-01T00:00", "2030-01-01T00:00", "2030-01-02T00:00"),
        ("*/15 9-17 * * 1-5", "2030-01-05T10:00", "2030-01-04T17:45", "2030-01-07T09:00"),
        ("0 0 * * 1", "2030-01-01T00:00", "2029-12-31T00:00", "2030-01-07T00:00"),
        ("0 0 1 * *", "2030-03-15T08:00", "2030-03-01T00:00", "2030-04-01T00:00"),
        ("0 0 29 2 *", "2030-06-01T00:00", "2028-02-29T00:00", "2032-02-29T00:00"),
        ("30 6 31 * *", "2030-05-01T00:00", "2030-03-31T06:30", "2030-05-31T06:30"),
        ("59 23 31 12 *", "2030-01-01T00:00", "2029-12-31T23:59", "2030-12-31T23:59"),
        # Both day fields restricted: either matches (the 13th, or any Friday).
        ("0 0 13 * 5", "2030-01-05T00:00", "2030-01-04T00:00", "2030-01-11T00:00"),
        # One day field starting with `*`: only the other counts.
        ("0 0 */2 * 1", "2030-01-01T00:00", "2029-12-31T00:00", "2030-01-07T00:00"),
    ],
)
def test_firing_times(text: str, now: str, latest: str, following: str) -> None:
    schedule = parse(text)
    assert schedule.latest_at_or_before(at(now)) == at(latest)
    assert schedule.next_after(at(now)) == at(following)


def test_searches_skip_whole_years_quickly() -> None:
    schedule = parse("0 0 29 2 *")
    # 2100 is not a leap year: eight years between firings.
    assert schedule.next_after(at("2096-03-01T00:00")) == at("2104-02-29T00:00")
    assert schedule.latest_at_or_before(at("2104-02-28T00:00")) == at("2096-02-29T00:00")
