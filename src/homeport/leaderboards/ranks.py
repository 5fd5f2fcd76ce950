"""An in-memory rank index: a player's rank without counting the records ahead in the database.

Counting index entries costs time in proportion to the rank, milliseconds for a player half-way
down 100,000 records. Each process instead keeps, per board and period it has been asked about,
every record's standing key in a list of sorted buckets (a few hundred of a thousand keys), so a
rank is a bisect into the bucket maxima plus a bisect in one bucket, and a change is a removal
and an insertion in one bucket.

A standing key packs the database's ordering (order_score, order_subscore, reached_us,
player_id, all ascending) into one integer, so Python compares it as the index compares rows.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left, insort
from collections.abc import Iterable

SCORE_LIMIT = 2**53 - 1
"""Scores stay within what every JSON parser reads exactly (Godot's reads numbers as doubles)."""
_OFFSET = 2**53
_PLAYER_BITS = 128
_TIME_SHIFT = _PLAYER_BITS
_SUBSCORE_SHIFT = _TIME_SHIFT + 64
_SCORE_SHIFT = _SUBSCORE_SHIFT + 54
BUCKET = 1000


def standing_key(order_score: int, order_subscore: int, reached_us: int, player: int) -> int:
    return (
        ((order_score + _OFFSET) << _SCORE_SHIFT)
        | ((order_subscore + _OFFSET) << _SUBSCORE_SHIFT)
        | (reached_us << _TIME_SHIFT)
        | player
    )


class RankIndex:
    """Standing keys of one board and period, with each player's key and record version."""

    def __init__(self, entries: Iterable[tuple[int, int, int]] = ()) -> None:
        """`entries`: (key, player, version) in ascending key order, as the database sorts."""
        self._players: dict[int, tuple[int, int]] = {}
        keys: list[int] = []
        for key, player, version in entries:
            self._players[player] = (key, version)
            keys.append(key)
        self._buckets = [keys[i : i + BUCKET] for i in range(0, len(keys), BUCKET)]
        self._maxes = [bucket[-1] for bucket in self._buckets]
        self._before: list[int] | None = None

    def __len__(self) -> int:
        return len(self._players)

    def version_of(self, player: uuid.UUID) -> int | None:
        entry = self._players.get(player.int)
        return None if entry is None else entry[1]

    def apply(self, player: int, key: int, version: int) -> None:
        """Record a player's standing unless a newer version is already here."""
        old = self._players.get(player)
        if old is not None:
            if old[1] >= version:
                return
            self._remove(old[0])
        self._players[player] = (key, version)
        self._insert(key)

    def rank(self, player: uuid.UUID, key: int) -> int:
        """1 + the number of other players whose standing is ahead of `key`.

        `key` is the player's standing as just read from the database, so a player's own rank
        follows their own latest record even when this index has not heard of it yet.
        """
        ahead = self._count_below(key)
        own = self._players.get(player.int)
        if own is not None and own[0] < key:
            ahead -= 1
        return ahead + 1

    def _count_below(self, key: int) -> int:
        i = bisect_left(self._maxes, key)
        if i == len(self._maxes):
            return len(self._players)
        if self._before is None:
            total, before = 0, []
            for bucket in self._buckets:
                before.append(total)
                total += len(bucket)
            self._before = before
        return self._before[i] + bisect_left(self._buckets[i], key)

    def _insert(self, key: int) -> None:
        self._before = None
        if not self._buckets:
            self._buckets.append([key])
            self._maxes.append(key)
            return
        i = min(bisect_left(self._maxes, key), len(self._maxes) - 1)
        bucket = self._buckets[i]
        insort(bucket, key)
        self._maxes[i] = bucket[-1]
        if len(bucket) > 2 * BUCKET:
            self._buckets[i : i + 1] = [bucket[:BUCKET], bucket[BUCKET:]]
            self._maxes[i : i + 1] = [bucket[BUCKET - 1], bucket[-1]]

    def _remove(self, key: int) -> None:
        self._before = None
        i = bisect_left(self._maxes, key)
        bucket = self._buckets[i]
        del bucket[bisect_left(bucket, key)]
        if bucket:
            self._maxes[i] = bucket[-1]
        else:
            del self._buckets[i]
            del self._maxes[i]
