"""Reading a board: top pages, one player's standing, the records around a player, a list of
players' records.

Records come from the database, in the order of the standing index; rank numbers come from the
process's rank index (see `standings`), so no read counts the records ahead of a player. A
player's rank is always computed from their record as just read, so it follows their latest
submission at once; other players' changes reach it through the feed.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Row, Select, select, tuple_

from homeport.db.reads import Reader
from homeport.errors import UnprocessableContent
from homeport.identity.models import Account
from homeport.leaderboards.errors import RecordNotFound
from homeport.leaderboards.models import LeaderboardRecord as R
from homeport.leaderboards.ranks import SCORE_LIMIT, RankIndex, standing_key
from homeport.leaderboards.submissions import EPOCH
from homeport.timefmt import rfc3339

_STANDING = tuple_(R.order_score, R.order_subscore, R.reached_us, R.player_id)
_ASCENDING = (R.order_score, R.order_subscore, R.reached_us, R.player_id)
_DESCENDING = tuple(column.desc() for column in _ASCENDING)
_COLUMNS = (
    R.player_id,
    Account.display_name,
    R.score,
    R.subscore,
    R.game_metadata.label("game_metadata"),
    R.reached_us,
    R.updated_at,
    R.order_score,
    R.order_subscore,
)
Standing = tuple[int, int, int, uuid.UUID]


def _select(board_id: str, period: str, *conditions: ColumnElement[bool]) -> Select[Any]:
    return (
        select(*_COLUMNS)
        .join(Account, Account.id == R.player_id)
        .where(R.board_id == board_id, R.period == period, *conditions)
    )


def _standing(row: Row[Any]) -> Standing:
    return (row.order_score, row.order_subscore, row.reached_us, row.player_id)


def _key(row: Row[Any]) -> int:
    return standing_key(row.order_score, row.order_subscore, row.reached_us, row.player_id.int)


def render(row: Row[Any], rank: int) -> dict[str, Any]:
    return {
        "rank": rank,
        "player_id": str(row.player_id),
        "display_name": row.display_name,
        "score": row.score,
        "subscore": row.subscore,
        "metadata": row.game_metadata,
        "reached_at": rfc3339(EPOCH + timedelta(microseconds=row.reached_us)),
        "updated_at": rfc3339(row.updated_at),
    }


def _bad_cursor() -> UnprocessableContent:
    error = {"loc": ["query", "cursor"], "msg": "Not a cursor of this board", "type": "value_error"}
    return UnprocessableContent(errors=[error])


def encode_cursor(board_id: str, period: str, row: Row[Any], rank: int) -> str:
    standing = [row.order_score, row.order_subscore, row.reached_us, row.player_id.hex]
    raw = orjson.dumps([board_id, period, *standing, rank])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, board_id: str, period: str) -> tuple[Standing, int]:
    """The last row's standing and rank, if the cursor is one this board and period gave out:
    cursors come back from clients, and a value the database cannot compare must be a 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        board, at, score, subscore, reached, player, rank = orjson.loads(raw)
        player_id = uuid.UUID(hex=player)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise _bad_cursor() from exc
    numbers = (score, subscore, reached, rank)
    if (
        board != board_id
        or at != period
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers)
        or max(abs(score), abs(subscore)) > SCORE_LIMIT
        or not 0 <= reached < 2**63
        or not 0 < rank < 2**31
    ):
        raise _bad_cursor()
    return (score, subscore, reached, player_id), rank


async def top(
    reader: Reader, board_id: str, period: str, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page from the top, and the cursor of the next (None on the last page)."""
    conditions = []
    first_rank = 1
    if cursor is not None:
        after, last_rank = decode_cursor(cursor, board_id, period)
        conditions.append(tuple_(*after) < _STANDING)
        first_rank = last_rank + 1
    query = _select(board_id, period, *conditions).order_by(*_ASCENDING).limit(limit + 1)
    rows = await reader.rows(query)
    page = [render(row, first_rank + i) for i, row in enumerate(rows[:limit])]
    if len(rows) <= limit:
        return page, None
    return page, encode_cursor(board_id, period, rows[limit - 1], first_rank + limit - 1)


async def _player_row(reader: Reader, board_id: str, period: str, player_id: uuid.UUID) -> Any:
    rows = await reader.rows(_select(board_id, period, R.player_id == player_id))
    if not rows:
        raise RecordNotFound()
    return rows[0]


async def standing_of(
    reader: Reader, index: RankIndex, board_id: str, period: str, player_id: uuid.UUID
) -> dict[str, Any]:
    row = await _player_row(reader, board_id, period, player_id)
    return render(row, index.rank(player_id, _key(row)))


async def around(
    reader: Reader,
    index: RankIndex,
    board_id: str,
    period: str,
    player_id: uuid.UUID,
    *,
    limit: int,
) -> list[dict[str, Any]]:
    """`limit` records with the player's among them, centred on it where the board allows: at
    the top or the bottom of the board the window shifts so that it stays full."""
    row = await _player_row(reader, board_id, period, player_id)
    rank = index.rank(player_id, _key(row))
    at = tuple_(*_standing(row))
    before = await reader.rows(
        _select(board_id, period, at > _STANDING).order_by(*_DESCENDING).limit(limit - 1)
    )
    after = await reader.rows(
        _select(board_id, period, at < _STANDING).order_by(*_ASCENDING).limit(limit - 1)
    )
    wanted_before = (limit - 1) // 2
    take_before = min(len(before), max(wanted_before, limit - 1 - len(after)))
    take_after = min(len(after), limit - 1 - take_before)
    above = list(reversed(before[:take_before]))
    rows = [*above, row, *after[:take_after]]
    first = rank - len(above)
    return [render(r, first + i) for i, r in enumerate(rows)]


async def of_players(
    reader: Reader, index: RankIndex, board_id: str, period: str, players: list[uuid.UUID]
) -> list[dict[str, Any]]:
    """The records of these players (those who have one), best first, with their ranks."""
    rows = await reader.rows(_select(board_id, period, R.player_id.in_(set(players))))
    ranked = sorted((index.rank(row.player_id, _key(row)), _key(row), row) for row in rows)
    return [render(row, rank) for rank, _, row in ranked]
