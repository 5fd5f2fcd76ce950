"""Refusals of the metrics endpoint."""

from __future__ import annotations

from homeport.errors import Unauthorized


class MetricsTokenInvalid(Unauthorized):
    slug = "metrics-token-invalid"
    title = "The metrics token is missing or wrong"
