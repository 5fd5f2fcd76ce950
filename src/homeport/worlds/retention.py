"""Which snapshots a world keeps: its newest few, and its last one of each recent day.

A server that saves every few minutes makes hundreds of snapshots a day; the newest ones cover
a crash, the daily ones cover a griefer or a bug noticed days later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def kept(
    snapshots: list[tuple[int, datetime]], *, keep_last: int, daily_days: int, now: datetime
) -> set[int]:
    """The sequence numbers to keep among (seq, created_at): the `keep_last` highest, and for
    each of the last `daily_days` UTC days (today included) the highest of that day."""
    ordered = sorted(snapshots, key=lambda item: item[0], reverse=True)
    keep = {seq for seq, _ in ordered[:keep_last]}
    if daily_days > 0:
        first_day = (now.astimezone(UTC) - timedelta(days=daily_days - 1)).date()
        seen_days = set()
        for seq, created in ordered:
            day = created.astimezone(UTC).date()
            if day >= first_day and day not in seen_days:
                seen_days.add(day)
                keep.add(seq)
    return keep
