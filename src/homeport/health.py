"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from sqlalchemy import text

from homeport.deps import StateDep
from homeport.errors import Unavailable
from homeport.openapi import problems

router = APIRouter(tags=["health"])
READY_TIMEOUT = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@router.get("/readyz", responses=problems(Unavailable))
async def readyz(state: StateDep) -> dict[str, str]:
    """The database answers: this replica can take traffic."""
    try:
        async with asyncio.timeout(READY_TIMEOUT), state.read_sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:
        raise Unavailable("The database is not reachable") from exc
    return {"status": "ready"}
