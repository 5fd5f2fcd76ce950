"""What a scrape of `/metrics` answers, and who may ask."""

from __future__ import annotations

import hmac

from homeport.observability import multiprocess
from homeport.observability.errors import MetricsTokenInvalid
from homeport.state import AppState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def require_token(expected: str | None, authorization: str | None) -> None:
    """With a metrics token set, only `Authorization: Bearer <token>` may scrape."""
    if expected is None:
        return
    scheme, _, value = (authorization or "").partition(" ")
    given = value.strip() if scheme.lower() == "bearer" else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise MetricsTokenInvalid()


async def scrape(state: AppState, authorization: str | None) -> bytes:
    require_token(state.settings.metrics_token, authorization)
    return multiprocess.exposition(await state.gauges.families())
