"""`GET /metrics`: the Prometheus text exposition of the whole instance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response

from homeport.deps import StateDep
from homeport.observability.errors import MetricsTokenInvalid
from homeport.observability.scrape import CONTENT_TYPE, scrape
from homeport.openapi import problems

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {}}},
        **problems(MetricsTokenInvalid),
    },
)
async def metrics(
    state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Counters, histograms and state gauges of every process of this instance, for
    Prometheus. With `HOMEPORT_METRICS_TOKEN` set, send it as `Authorization: Bearer`;
    without, anyone who reaches this address may read it."""
    return Response(await scrape(state, authorization), media_type=CONTENT_TYPE)
