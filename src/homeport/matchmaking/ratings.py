"""Players' ratings: an Elo number per rating pool, kept in their player documents.

Stored as documents (collection `matchmaking_ratings_collection`, key = pool), so a studio sees
and edits them like any other player data, and erasing a player erases them too.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import Clock
from homeport.players.documents import Write, write_documents
from homeport.players.models import PlayerDocument
from homeport.players.schemas import WriteOp
from homeport.settings import Settings

INITIAL = 1500.0
K = 32.0


async def ratings_of(
    session: AsyncSession, settings: Settings, pool: str, players: list[uuid.UUID]
) -> dict[uuid.UUID, float]:
    """Each player's rating in the pool; players without one start at the initial rating."""
    rows = await session.execute(
        select(PlayerDocument.account_id, PlayerDocument.value).where(
            PlayerDocument.account_id.in_(players),
            PlayerDocument.collection == settings.matchmaking_ratings_collection,
            PlayerDocument.key == pool,
            PlayerDocument.deleted_at.is_(None),
        )
    )
    found = {player: _rating(value) for player, value in rows.all()}
    return {player: found.get(player, INITIAL) for player in players}


def _rating(value: Any) -> float:
    rating = value.get("rating") if isinstance(value, dict) else None
    return float(rating) if isinstance(rating, int | float) else INITIAL


def elo_changes(teams: list[list[float]], ranks: list[int]) -> list[float]:
    """Each team's rating change: every pair of teams is one Elo game (lower rank won, equal
    ranks drew), scaled so a two-team match moves ratings by the classic K."""
    means = [sum(team) / len(team) if team else INITIAL for team in teams]
    changes = [0.0] * len(teams)
    opponents = max(1, len(teams) - 1)
    for a in range(len(teams)):
        for b in range(len(teams)):
            if a == b:
                continue
            expected = 1.0 / (1.0 + 10 ** ((means[b] - means[a]) / 400.0))
            score = 1.0 if ranks[a] < ranks[b] else 0.5 if ranks[a] == ranks[b] else 0.0
            changes[a] += K * (score - expected) / opponents
    return changes


async def apply_result(
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    pool: str,
    teams: list[list[str]],
    ranks: list[int],
) -> dict[str, float]:
    """Update every player's rating after a match; their new ratings."""
    players = [uuid.UUID(p) for team in teams for p in team]
    current = await ratings_of(session, settings, pool, players)
    changes = elo_changes([[current[uuid.UUID(p)] for p in team] for team in teams], ranks)
    updated: dict[str, float] = {}
    collection = settings.matchmaking_ratings_collection
    for team, change in zip(teams, changes, strict=True):
        for player in team:
            player_id = uuid.UUID(player)
            existing = await session.get(PlayerDocument, (player_id, collection, pool))
            games = 0
            if existing is not None and existing.deleted_at is None:
                games = int((existing.value or {}).get("games", 0))
            rating = round(current[player_id] + change, 2)
            value = {"rating": rating, "games": games + 1}
            version = 0 if existing is None else existing.version  # tombstones keep theirs
            await write_documents(
                session,
                clock,
                settings,
                player_id,
                [Write(WriteOp.PUT, collection, pool, value=value, version=version)],
            )
            updated[player] = rating
    return updated
