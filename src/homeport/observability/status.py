"""What `homeport status` reports about a running instance, from its HTTP API alone.

Everything comes from what any operator's machine can reach: the health probes, `/metrics`
(state gauges and counters since the instance started) and, given an admin key, the fleet and
queue listings. So it works against a remote replica as well as beside a local one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


class Unreachable(Exception):
    """The instance did not answer, or refused what was asked (a wrong admin key)."""


@dataclass
class Status:
    url: str
    ready: bool = False
    version: str | None = None
    metrics: str = "unread"
    """ok, or why they could not be read: the figures below are then missing."""
    servers: dict[str, int] = field(default_factory=dict)
    players: int = 0
    fleets: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    """Requests answered, by status class (2xx ...), and `total`."""
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per counted action (validations, heartbeats, ...): ok and each refusal reason."""

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ready": self.ready,
            "version": self.version,
            "metrics": self.metrics,
            "servers": self.servers,
            "players": self.players,
            "fleets": self.fleets,
            "queues": self.queues,
            "requests": self.requests,
            **self.outcomes,
        }


OUTCOMES = {
    "homeport_validations_total": "validations",
    "homeport_heartbeats_total": "heartbeats",
    "homeport_player_data_saves_total": "saves",
    "homeport_world_snapshot_commits_total": "snapshot_commits",
    "homeport_fleet_allocations_total": "allocations",
}


def _read_metrics(status: Status, text: str) -> None:
    outcomes: dict[str, dict[str, int]] = {name: {} for name in OUTCOMES.values()}
    requests: dict[str, int] = defaultdict(int)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            _read_sample(status, sample, outcomes, requests)
    status.requests = {"total": sum(requests.values()), **dict(sorted(requests.items()))}
    status.outcomes = {name: _ok_first(counted) for name, counted in outcomes.items()}


def _ok_first(counted: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counted.items(), key=lambda item: (item[0] != "ok", item[0])))


def _read_sample(
    status: Status,
    sample: Sample,
    outcomes: dict[str, dict[str, int]],
    requests: dict[str, int],
) -> None:
    name, labels, value = sample.name, sample.labels, int(sample.value)
    if name == "homeport_build_info":
        status.version = labels.get("version")
    elif name == "homeport_servers":
        status.servers[labels["state"]] = value
    elif name == "homeport_server_players":
        status.players = value
    elif name == "homeport_fleet_servers":
        fleet = status.fleets.setdefault(labels["fleet"], {"servers": {}})
        fleet["servers"][labels["state"]] = value
    elif name == "homeport_matchmaking_tickets":
        queue = status.queues.setdefault(labels["queue"], {"tickets": {}})
        queue["tickets"][labels["state"]] = value
    elif name == "homeport_http_requests_total":
        requests[labels["status"][0] + "xx"] += value
    elif name in OUTCOMES:
        reason = labels.get("reason") or "ok"
        counted = outcomes[OUTCOMES[name]]
        counted[reason] = counted.get(reason, 0) + value


def _read_listings(status: Status, client: httpx.Client, admin_key: str) -> None:
    headers = {"Authorization": f"Bearer {admin_key}"}
    fleets = client.get("/v1/fleets", headers=headers)
    fleets.raise_for_status()
    for fleet in fleets.json()["fleets"]:
        entry = status.fleets.setdefault(fleet["name"], {"servers": {}})
        entry["live"] = fleet["servers"]
        entry["scaling"] = {k: v for k, v in fleet["scaling"].items() if v is not None}
        entry["crash_streak"] = fleet["crash_streak"]
    queues = client.get("/v1/matchmaking/queues", headers=headers)
    queues.raise_for_status()
    for queue in queues.json()["queues"]:
        entry = status.queues.setdefault(queue["name"], {"tickets": {}})
        entry["format"] = f"{queue['teams']}x{queue['team_size']}"
        entry["searching"] = queue["searching"]


def gather(url: str, *, admin_key: str | None, metrics_token: str | None, timeout: float) -> Status:
    status = Status(url=url)
    with httpx.Client(base_url=url, timeout=timeout) as client:
        try:
            client.get("/healthz").raise_for_status()
        except httpx.HTTPError as exc:
            raise Unreachable(f"{url} does not answer: {exc}") from exc
        try:
            status.ready = client.get("/readyz").status_code == 200
            headers = {"Authorization": f"Bearer {metrics_token}"} if metrics_token else {}
            scraped = client.get("/metrics", headers=headers)
            if scraped.status_code == 200:
                _read_metrics(status, scraped.text)
                status.metrics = "ok"
            else:
                status.metrics = f"refused ({scraped.status_code}): is the metrics token right?"
            if admin_key:
                _read_listings(status, client, admin_key)
        except httpx.HTTPStatusError as exc:
            raise Unreachable(f"{exc.request.url} answered {exc.response.status_code}") from exc
        except httpx.HTTPError as exc:
            raise Unreachable(f"{url} stopped answering: {exc}") from exc
    return status
