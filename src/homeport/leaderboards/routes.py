"""HTTP routes of the leaderboards."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["leaderboards"])
