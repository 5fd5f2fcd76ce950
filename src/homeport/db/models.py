"""Imports every capability's tables so that `Base.metadata` is complete (Alembic, tests)."""

from homeport.db.base import Base
from homeport.identity import models as identity_models

__all__ = ["Base", "identity_models"]
