"""Talking to a Kubernetes cluster about Agones resources, through lightkube.

One client per cluster configuration and event loop, kept open so allocations reuse their
connections; `close_clients()` ends those of the running loop (the app and the fleet agent
call it when they stop). Every failure of the client leaves here as a Homeport error (see
`translated`), never as an httpx or lightkube exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Iterator
from typing import Any

import httpx
from lightkube import ApiError, AsyncClient, ConfigError, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from homeport.fleet.agones.errors import (
    ClusterAccessDenied,
    ClusterConfigInvalid,
    ClusterRefused,
    ClusterUnreachable,
)
from homeport.fleet.agones.spec import AgonesSpec

log = logging.getLogger("homeport.fleet.agones")

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
FIELD_MANAGER = "homeport"

GameServerAllocation = create_namespaced_resource(
    "allocation.agones.dev", "v1", "GameServerAllocation", "gameserverallocations"
)
GameServer = create_namespaced_resource("agones.dev", "v1", "GameServer", "gameservers")
AgonesFleet = create_namespaced_resource("agones.dev", "v1", "Fleet", "fleets")

_Key = tuple[str | None, str | None]
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.contextmanager
def translated(spec: AgonesSpec) -> Iterator[None]:
    """Map the client's exceptions to the most specific Homeport error."""
    where = f"namespace {spec.namespace}, Fleet {spec.fleet}"
    try:
        yield
    except ApiError as exc:
        code = exc.status.code or exc.response.status_code
        log.warning("Kubernetes refused a request (%s): %s %s", where, code, exc.status.message)
        if code in (401, 403):
            raise ClusterAccessDenied(kubernetes_status=code) from exc
        raise ClusterRefused(
            f"Kubernetes answered {code} {exc.status.reason or ''}".rstrip(),
            kubernetes_status=code,
        ) from exc
    except httpx.HTTPStatusError as exc:  # no Status in the body: a proxy's error page, say
        code = exc.response.status_code
        log.warning("Kubernetes API answered %d without a Status (%s)", code, where)
        raise ClusterRefused(
            f"The Kubernetes API answered {code} without a Status", kubernetes_status=code
        ) from exc
    except ConfigError as exc:
        log.warning("cannot configure the Kubernetes client (%s): %s", where, exc)
        raise ClusterConfigInvalid() from exc
    except httpx.TransportError as exc:
        log.warning("Kubernetes API server unreachable (%s): %r", where, exc)
        raise ClusterUnreachable() from exc
    except json.JSONDecodeError as exc:
        log.warning("the Kubernetes API answered something else than JSON (%s)", where)
        raise ClusterRefused("The Kubernetes API answered something else than JSON") from exc


def _configure(spec: AgonesSpec) -> AsyncClient:
    try:
        if spec.kubeconfig is None:
            config = KubeConfig.from_service_account()
        else:
            config = KubeConfig.from_file(spec.kubeconfig)
        single = config.get(spec.context)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(str(exc)) from exc
    assert single is not None  # `get` raises rather than answering None without a default
    # trust_env off: Homeport reads its settings once; no proxy variables sneak in.
    return AsyncClient(
        config=single,
        namespace=spec.namespace,
        timeout=TIMEOUT,
        field_manager=FIELD_MANAGER,
        trust_env=False,
    )


def client_for(spec: AgonesSpec) -> AsyncClient:
    """The open client of this loop for the spec's cluster, made on first use."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    key = (spec.kubeconfig, spec.context)
    found = per_loop.get(key)
    if found is None:
        with translated(spec):
            found = per_loop[key] = _configure(spec)
    return found


async def close_clients() -> None:
    """Close the clients this event loop opened."""
    per_loop = _clients.pop(asyncio.get_running_loop(), {})
    for client in per_loop.values():
        with contextlib.suppress(Exception):
            await client.close()


async def create_allocation(spec: AgonesSpec, body: dict[str, Any]) -> dict[str, Any]:
    client = client_for(spec)
    with translated(spec):
        created = await client.create(GameServerAllocation(**body))
    return dict(created)


async def list_game_servers(spec: AgonesSpec) -> list[dict[str, Any]]:
    client = client_for(spec)
    with translated(spec):
        return [
            dict(item)
            async for item in client.list(
                GameServer, namespace=spec.namespace, labels={"agones.dev/fleet": spec.fleet}
            )
        ]


async def get_fleet(spec: AgonesSpec) -> dict[str, Any]:
    client = client_for(spec)
    with translated(spec):
        return dict(await client.get(AgonesFleet, spec.fleet, namespace=spec.namespace))


async def scale_fleet(spec: AgonesSpec, replicas: int) -> None:
    """Set the Fleet's `spec.replicas` through its scale subresource (a merge patch, so
    nothing else of the Fleet is touched)."""
    client = client_for(spec)
    with translated(spec):
        await client.patch(
            AgonesFleet.Scale,
            spec.fleet,
            {"spec": {"replicas": replicas}},
            namespace=spec.namespace,
            patch_type=PatchType.MERGE,
        )
