"""Imports every capability's tables so that `Base.metadata` is complete (Alembic, tests)."""

from homeport.dashboard import models as dashboard_models
from homeport.db.base import Base
from homeport.events import models as event_models
from homeport.fleet import models as fleet_models
from homeport.identity import models as identity_models
from homeport.leaderboards import models as leaderboard_models
from homeport.matchmaking import models as matchmaking_models
from homeport.players import models as player_models
from homeport.registry import models as registry_models
from homeport.worlds import models as world_models

__all__ = [
    "Base",
    "dashboard_models",
    "event_models",
    "fleet_models",
    "identity_models",
    "leaderboard_models",
    "matchmaking_models",
    "player_models",
    "registry_models",
    "world_models",
]
