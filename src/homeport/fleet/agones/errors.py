"""Refusals of an Agones fleet: the cluster could not be asked, or would not answer.

All are 503 for the caller (a matchmaker, an admin): the request was fine, the fleet's
cluster is not usable right now. The `type` says which, so an operator's alert can tell a
network outage from a broken service account.
"""

from __future__ import annotations

from homeport.errors import Unavailable


class ClusterUnreachable(Unavailable):
    slug = "cluster-unreachable"
    title = "The fleet's Kubernetes API server did not answer"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class ClusterAccessDenied(Unavailable):
    slug = "cluster-access-denied"
    title = (
        "The fleet's Kubernetes API server refused Homeport's credentials or their permissions:"
        " check the kubeconfig or the service account and its RBAC"
    )


class ClusterConfigInvalid(Unavailable):
    slug = "cluster-config-invalid"
    title = "Homeport cannot read how to reach the fleet's cluster (kubeconfig or service account)"


class ClusterRefused(Unavailable):
    slug = "cluster-refused"
    title = "The fleet's Kubernetes API server refused the request"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}
