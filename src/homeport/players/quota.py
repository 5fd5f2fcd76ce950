"""How much a player's documents may take, and what each document counts.

A document counts its JSON, its collection and key, and a fixed overhead, so thousands of tiny
documents cost what their rows cost. Collections the player writes have a budget of their own
(`players_owner_max_bytes`): a player filling it never blocks a server's save, which counts
against `players_player_max_bytes`. The number of documents is capped too. A write that makes
usage smaller is always allowed, even above a limit lowered since (a delete must work).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from homeport.errors import HomeportError
from homeport.players.access import rule_for
from homeport.players.errors import PlayerDataFull
from homeport.settings import Settings

OVERHEAD = 64


def charged(json_bytes: int, collection: str, key: str) -> int:
    return json_bytes + len(collection) + len(key) + OVERHEAD


@dataclass(frozen=True, slots=True)
class Usage:
    server: int = 0
    owner: int = 0
    count: int = 0


class Quota:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def owner_budget(self, collection: str) -> bool:
        return rule_for(self._settings, collection).write == "owner"

    def change(self, usage: Usage, collection: str, size: int, documents: int) -> Usage:
        """`usage` after `size` bytes and `documents` documents more in `collection`."""
        if self.owner_budget(collection):
            return replace(usage, owner=usage.owner + size, count=usage.count + documents)
        return replace(usage, server=usage.server + size, count=usage.count + documents)

    def of_rows(self, rows: Iterable[Any]) -> dict[uuid.UUID, Usage]:
        """Usage per player from rows of (player, collection, bytes, documents)."""
        usage: dict[uuid.UUID, Usage] = {}
        for player, collection, size, documents in rows:
            usage[player] = self.change(
                usage.get(player, Usage()), collection, int(size), int(documents)
            )
        return usage

    def refusal(self, before: Usage, after: Usage) -> HomeportError | None:
        settings = self._settings
        if after.count > settings.players_max_documents and after.count > before.count:
            limit = settings.players_max_documents
            return PlayerDataFull(
                f"The player may have at most {limit} documents", max_documents=limit
            )
        for name, limit in (
            ("server", settings.players_player_max_bytes),
            ("owner", settings.players_owner_max_bytes),
        ):
            now, then = getattr(after, name), getattr(before, name)
            if now > limit and now > then:
                return PlayerDataFull(
                    f"The player's documents would take {now} bytes; the limit is {limit}",
                    max_bytes=limit,
                )
        return None
