"""A board's rules as the hot paths use them: order, operator and reset schedule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from homeport.leaderboards.models import Leaderboard
from homeport.leaderboards.periods import Period, Reset, Schedule
from homeport.leaderboards.schemas import Operator, Order


@dataclass(slots=True)
class BoardRule:
    id: str
    order: Order
    operator: Operator
    reset: Reset
    cron: str | None
    created_at: datetime
    schedule: Schedule = field(init=False)

    def __post_init__(self) -> None:
        self.schedule = Schedule(self.reset, self.cron)

    @classmethod
    def of(cls, row: Leaderboard) -> BoardRule:
        return cls(
            row.id,
            Order(row.sort_order),
            Operator(row.operator),
            Reset(row.reset),
            row.cron,
            row.created_at,
        )

    @property
    def sign(self) -> int:
        """Multiplies a score into its ascending sort value (and back)."""
        return -1 if self.order is Order.DESC else 1

    def period_at(self, moment: datetime) -> Period:
        return self.schedule.period_at(moment)

    def is_better(self, score: int, subscore: int, than_score: int, than_subscore: int) -> bool:
        s = self.sign
        return (score * s, subscore * s) < (than_score * s, than_subscore * s)
