"""The admin API changes an Agones fleet's policy, but not how Homeport reaches its cluster
unless fleet_admin_commands allows it (a kubeconfig is a file read on Homeport's host)."""

from __future__ import annotations

import httpx

from homeport.fleet.spec import FleetSpec
from tests.factories import bearer, problem_type


async def test_policy_changes_pass_and_cluster_access_changes_are_refused(
    client: httpx.AsyncClient, admin: str, fleet_spec: FleetSpec
) -> None:
    current = fleet_spec.model_dump(mode="json")
    policy = {**current, "scaling": {**current["scaling"], "buffer": 5}}
    answer = await client.put("/v1/admin/fleets/arena", json=policy, headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    assert answer.json()["spec"]["agones"]["fleet"] == "arena-fleet"

    moved = {**current, "agones": {**current["agones"], "kubeconfig": "/etc/other-cluster"}}
    answer = await client.put("/v1/admin/fleets/arena", json=moved, headers=bearer(admin))
    assert answer.status_code == 403, answer.text
    assert problem_type(answer) == "fleet-commands-forbidden"

    local = {k: v for k, v in current.items() if k not in ("provider", "agones")}
    answer = await client.put("/v1/admin/fleets/arena", json=local, headers=bearer(admin))
    assert answer.status_code == 403, "nor may it turn the fleet into processes on this host"
