"""Request and response bodies of the leaderboard endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from homeport.leaderboards import cron
from homeport.leaderboards.periods import Reset
from homeport.leaderboards.ranks import SCORE_LIMIT
from homeport.validators import encoded_json

METADATA_MAX_BYTES = 2048
MAX_PAGE = 100
MAX_PLAYERS = 100
BOARD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class Order(StrEnum):
    DESC = "desc"
    """Highest score first."""
    ASC = "asc"
    """Lowest score first (fastest times)."""


class Operator(StrEnum):
    BEST = "best"
    """Keep the better of the stored and the submitted record (score, then subscore)."""
    LATEST = "latest"
    """The submission replaces the record."""
    INCREMENT = "increment"
    """Add the submitted score and subscore to the record's."""


def _small_json(value: dict[str, Any]) -> dict[str, Any]:
    if len(encoded_json(value)) > METADATA_MAX_BYTES:
        raise ValueError(f"must be at most {METADATA_MAX_BYTES} bytes as JSON")
    return value


def _cron(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return cron.parse(value).text
    except cron.CronError as exc:
        raise ValueError(str(exc)) from exc


BoardId = Annotated[str, StringConstraints(pattern=BOARD_ID_PATTERN)]
Score = Annotated[int, Field(ge=-SCORE_LIMIT, le=SCORE_LIMIT)]
Metadata = Annotated[dict[str, Any], AfterValidator(_small_json)]
CronText = Annotated[str, StringConstraints(max_length=128), AfterValidator(_cron)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BoardCreate(Strict):
    id: BoardId
    order: Order = Order.DESC
    operator: Operator = Operator.BEST
    reset: Reset = Reset.NEVER
    cron: CronText | None = None
    """`minute hour day-of-month month day-of-week` in UTC; only with `reset: cron`."""

    @model_validator(mode="after")
    def _cron_with_cron_reset(self) -> BoardCreate:
        if (self.reset is Reset.CRON) != (self.cron is not None):
            raise ValueError("a cron schedule goes with reset 'cron', and only with it")
        return self


class RecordSubmit(Strict):
    player_id: uuid.UUID
    score: Score
    subscore: Score = 0
    metadata: Metadata = {}
    """Shown with the record to everyone who reads the board (at most 2 KiB of JSON)."""


class PeriodOut(BaseModel):
    period: str
    """Pass as `period` to read this period; `all` on a board that never resets."""
    starts_at: datetime | None
    ends_at: datetime | None
    current: bool


class BoardOut(BaseModel):
    id: str
    order: Order
    operator: Operator
    reset: Reset
    cron: str | None
    created_at: datetime
    current_period: PeriodOut


class BoardList(BaseModel):
    leaderboards: list[BoardOut]


class PeriodList(BaseModel):
    board_id: str
    periods: list[PeriodOut]
    """Newest first; the current period is listed even before its first record."""


class RecordOut(BaseModel):
    rank: int
    player_id: uuid.UUID
    display_name: str
    score: int
    subscore: int
    metadata: dict[str, Any]
    reached_at: datetime
    """When the player first reached this score: the earlier of two equal records ranks first."""
    updated_at: datetime


class RecordPage(BaseModel):
    board_id: str
    period: str
    records: list[RecordOut]
    next_cursor: str | None = None
    """Top pages only: pass as `cursor` for the next page; null on the last one."""


class SubmittedOut(BaseModel):
    board_id: str
    period: str
    player_id: uuid.UUID
    score: int
    subscore: int
    metadata: dict[str, Any]
    reached_at: datetime
    updated_at: datetime
    changed: bool
    """False when the submission left the record as it was (`best`, and not better)."""
