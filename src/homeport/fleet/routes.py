"""HTTP routes of the fleet: thin wrappers over `service` and `allocation`.

Reads, drains and allocations take an admin key or a server key with the `fleet` scope (the
matchmaker's); defining, scaling and deleting fleets takes an admin key.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from starlette import status

from homeport.deps import AdminDep, SessionDep, StateDep, server_key
from homeport.fleet import allocation, service
from homeport.fleet import errors as e
from homeport.fleet.agones import errors as cluster
from homeport.fleet.schemas import (
    AllocateRequest,
    AllocateResponse,
    FleetList,
    FleetOut,
    GameServerList,
    GameServerOut,
    ScaleRequest,
)
from homeport.fleet.spec import FLEET_NAME, FleetSpec
from homeport.identity import errors as identity_errors
from homeport.identity.service_keys import Caller
from homeport.openapi import problems

router = APIRouter(tags=["fleet"])
FleetKeyDep = Annotated[Caller, server_key("fleet")]
FleetPath = Annotated[str, Path(pattern=FLEET_NAME.pattern)]
KEY_ERRORS = (identity_errors.ServerKeyInvalid, identity_errors.MissingScope)
ADMIN_ERRORS = (identity_errors.ServerKeyInvalid, identity_errors.AdminKeyRequired)
FLEET_SECURITY = {"security": [{"ServerKey": ["fleet"]}]}
CLUSTER_ERRORS = (
    cluster.ClusterUnreachable,
    cluster.ClusterAccessDenied,
    cluster.ClusterConfigInvalid,
    cluster.ClusterRefused,
)
"""What an Agones fleet's cluster may answer instead of its servers."""


@router.get(
    "/v1/fleets",
    response_model=FleetList,
    responses=problems(*KEY_ERRORS),
    openapi_extra=FLEET_SECURITY,
)
async def list_fleets(session: SessionDep, caller: FleetKeyDep) -> FleetList:
    """Every fleet with its live servers counted by state (admin key or scope `fleet`)."""
    views = await service.list_fleets(session)
    return FleetList(fleets=[FleetOut.of(v, admin=caller.is_admin) for v in views])


@router.get(
    "/v1/fleets/{fleet}",
    response_model=FleetOut,
    responses=problems(*KEY_ERRORS, e.FleetNotFound),
    openapi_extra=FLEET_SECURITY,
)
async def get_fleet(fleet: FleetPath, session: SessionDep, caller: FleetKeyDep) -> FleetOut:
    """One fleet (admin key or scope `fleet`); its whole definition for admin keys."""
    return FleetOut.of(await service.get_fleet(session, fleet), admin=caller.is_admin)


@router.get(
    "/v1/fleets/{fleet}/servers",
    response_model=GameServerList,
    responses=problems(*KEY_ERRORS, e.FleetNotFound, *CLUSTER_ERRORS),
    openapi_extra=FLEET_SECURITY,
)
async def list_servers(
    fleet: FleetPath,
    session: SessionDep,
    _caller: FleetKeyDep,
    include_ended: Annotated[bool, Query()] = False,
) -> GameServerList:
    """The fleet's servers, oldest first; ended ones too with `include_ended`."""
    rows = await service.list_servers(session, fleet, include_ended=include_ended)
    return GameServerList(servers=[GameServerOut.of(row) for row in rows])


@router.get(
    "/v1/fleets/{fleet}/servers/{server_id}",
    response_model=GameServerOut,
    responses=problems(*KEY_ERRORS, e.GameServerNotFound, *CLUSTER_ERRORS),
    openapi_extra=FLEET_SECURITY,
)
async def get_server(
    fleet: FleetPath, server_id: uuid.UUID, session: SessionDep, _caller: FleetKeyDep
) -> GameServerOut:
    return GameServerOut.of(await service.get_server(session, fleet, server_id))


@router.post(
    "/v1/fleets/{fleet}/servers/{server_id}/drain",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=GameServerOut,
    responses=problems(
        *KEY_ERRORS,
        e.GameServerNotFound,
        e.ServerNotDrainable,
        e.ServerNotReachable,
        *CLUSTER_ERRORS,
    ),
    openapi_extra=FLEET_SECURITY,
)
async def drain_server(
    fleet: FleetPath,
    server_id: uuid.UUID,
    state: StateDep,
    session: SessionDep,
    caller: FleetKeyDep,
) -> GameServerOut:
    """Ask the server to finish: `"action": "drain"` in its next heartbeat answer, SIGTERM
    after the fleet's notice, SIGKILL after its grace period. Its players are not cut off
    before it has had its chance to save them. An Agones GameServer hears it through its
    registry entry and stops itself; one with no live entry is a 409."""
    row = await service.get_server(session, fleet, server_id)
    reason = f"drained by {caller.name}"
    return GameServerOut.of(await service.request_drain(session, state.clock, row, reason=reason))


@router.post(
    "/v1/fleets/{fleet}/allocate",
    response_model=AllocateResponse,
    responses=problems(*KEY_ERRORS, e.FleetNotFound, e.NoServerAvailable, *CLUSTER_ERRORS),
    openapi_extra=FLEET_SECURITY,
)
async def allocate(
    fleet: FleetPath, body: AllocateRequest, state: StateDep, _caller: FleetKeyDep
) -> AllocateResponse:
    """Hand one ready, empty server of the fleet to the caller (a matchmaker, an admin). Two
    allocations never get the same server. With none ready, one more is asked for and the call
    waits up to `wait` seconds (capped by `fleet_allocation_timeout`); then 503. The server
    learns it was allocated, with `match_id`, `players` and `metadata`, in its next heartbeat
    answer."""
    limit = state.settings.fleet_allocation_timeout
    wait = limit if body.wait is None else min(body.wait, limit)
    request = allocation.Request(
        fleet=fleet,
        selector=allocation.Selector(body.region, body.version, body.labels or None),
        match_id=body.match_id,
        players=tuple(str(p) for p in body.players),
        metadata=body.metadata,
    )
    found = await allocation.allocate(state.sessions, state.clock, request, wait=wait)
    granted = found.allocation
    return AllocateResponse(
        server_id=found.server_id,
        fleet=found.fleet,
        address=found.address,
        port=found.port,
        region=found.region,
        version=found.version,
        labels=found.labels,
        allocation_id=granted["allocation_id"],
        match_id=granted["match_id"],
        allocated_at=granted["allocated_at"],
    )


@router.put(
    "/v1/admin/fleets/{fleet}",
    response_model=FleetOut,
    responses={
        201: {"description": "Created", "model": FleetOut},
        **problems(*ADMIN_ERRORS, e.FleetCommandsForbidden),
    },
)
async def put_fleet(
    fleet: FleetPath,
    body: FleetSpec,
    state: StateDep,
    session: SessionDep,
    _admin: AdminDep,
    response: Response,
) -> FleetOut:
    """Define or replace a fleet (admin key); 201 when new. The agent applies it on its next
    pass: running servers keep the definition they started with. Setting what a local fleet
    runs needs `fleet_admin_commands`; otherwise only its policy, labels and region change."""
    view, created = await service.put_fleet(session, state.clock, state.settings, fleet, body)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return FleetOut.of(view, admin=True)


@router.delete(
    "/v1/admin/fleets/{fleet}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*ADMIN_ERRORS, e.FleetNotFound, service.FleetNotEmpty),
)
async def delete_fleet(fleet: FleetPath, session: SessionDep, _admin: AdminDep) -> Response:
    """Delete a fleet that has no live server left (scale it to 0 first)."""
    await service.delete_fleet(session, fleet)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/admin/fleets/{fleet}/scale",
    response_model=FleetOut,
    responses=problems(*ADMIN_ERRORS, e.FleetNotFound),
)
async def scale_fleet(
    fleet: FleetPath, body: ScaleRequest, state: StateDep, session: SessionDep, _admin: AdminDep
) -> FleetOut:
    """Fix the fleet's size, or (`replicas: null`) return it to its buffer policy. Only empty
    servers are drained to shrink it."""
    return FleetOut.of(await service.scale(session, state.clock, fleet, body.replicas), admin=True)
