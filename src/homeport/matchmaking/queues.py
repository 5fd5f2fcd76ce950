"""What a queue is: who may be matched together, how many per match, and where they play.

Queues come from `homeport.toml` (`[matchmaking_queues.NAME]`) or the admin API and are stored
in the database, so every replica sees the same ones.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from homeport.fleet.spec import FLEET_NAME
from homeport.matchmaking.matcher import Rules

QUEUE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
PropertyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,32}$")]
FleetName = Annotated[str, StringConstraints(pattern=FLEET_NAME.pattern)]
Region = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,32}$")]


class SkillRule(BaseModel):
    """Players' ratings (see `ratings`) may differ by the window, which widens as they wait."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial: float = Field(100.0, ge=0)
    widen_per_s: float = Field(10.0, ge=0)
    max: float = Field(1000.0, ge=0)


class RegionRule(BaseModel):
    """Tickets carry their latency to each region; a match plays where all are under the cap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_latency: float = Field(150.0, gt=0, le=10_000)
    """Milliseconds."""


class QueueSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fleet: FleetName
    """The fleet a match's server is allocated from."""
    region_fleets: Annotated[dict[Region, FleetName], Field(max_length=64)] = {}
    """With a region rule: the fleet for each region (the others use `fleet`)."""
    teams: int = Field(2, ge=1, le=64)
    team_size: int = Field(5, ge=1, le=100)
    min_players: int | None = Field(None, ge=1)
    """Fewest players to start a match with; unset: a full match (teams * team_size)."""
    max_players: int | None = Field(None, ge=1)
    fill_after: float = Field(30.0, ge=0, le=3600)
    """Seconds the longest waiting ticket must have waited before a match starts short."""
    skill: SkillRule | None = SkillRule()
    region: RegionRule | None = None
    equal: Annotated[list[PropertyName], Field(max_length=16)] = []
    """Ticket properties that must be the same for everyone in a match (mode, build)."""
    ticket_timeout: float = Field(120.0, ge=1, le=86_400)
    max_party: int | None = Field(None, ge=1, le=100)
    """Largest party (leader included); unset: a whole team."""
    allocation_attempts: int = Field(3, ge=1, le=20)
    """Times a match's tickets go back to searching after a failed allocation before failing."""
    allocation_wait: float = Field(10.0, ge=0, le=600)
    """Seconds to wait for a server when the fleet has none ready."""
    rating_pool: PropertyName | None = None
    """Whose ratings this queue reads and updates; unset: the queue's own name."""

    @model_validator(mode="after")
    def _sizes(self) -> QueueSpec:
        full = self.teams * self.team_size
        if self.max_players is not None and self.max_players > full:
            raise ValueError("max_players must not exceed teams * team_size")
        if self.min_players is not None and self.min_players > (self.max_players or full):
            raise ValueError("min_players must not exceed max_players")
        if self.max_party is not None and self.max_party > self.team_size:
            raise ValueError("max_party must not exceed team_size: a party plays on one team")
        return self

    def rules(self) -> Rules:
        full = self.teams * self.team_size
        maximum = self.max_players or full
        skill = self.skill
        return Rules(
            teams=self.teams,
            team_size=self.team_size,
            min_players=self.min_players or maximum,
            max_players=maximum,
            fill_after=self.fill_after,
            skill_initial=None if skill is None else skill.initial,
            skill_widen_per_s=0.0 if skill is None else skill.widen_per_s,
            skill_max=float("inf") if skill is None else skill.max,
            max_latency=None if self.region is None else self.region.max_latency,
        )

    @property
    def party_limit(self) -> int:
        return self.max_party or self.team_size

    def fleet_for(self, region: str | None) -> str:
        return self.region_fleets.get(region or "", self.fleet)

    def pool(self, name: str) -> str:
        return self.rating_pool or name
