"""HTTP routes of worlds: thin wrappers over the services.

Everything takes a server key with scope `worlds` (or an admin key), limited to the worlds the
key's fleet or the key itself owns; listing and deleting worlds takes an admin key.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from starlette import status
from starlette.requests import ClientDisconnect

from homeport.db.session import unit_of_work
from homeport.deps import AdminDep, StateDep, server_key
from homeport.identity import errors as identity_errors
from homeport.identity.service_keys import Caller
from homeport.middleware import RawRule
from homeport.openapi import problems
from homeport.settings import Settings
from homeport.worlds import chunks, gc, service, snapshots
from homeport.worlds import errors as e
from homeport.worlds.access import WORLD_NAME, Writer
from homeport.worlds.context import Worlds
from homeport.worlds.download import chunk_response
from homeport.worlds.schemas import (
    MAX_SEQ,
    SHA256,
    ChunkStored,
    CommitRequest,
    LeaseOut,
    MissingRequest,
    MissingResponse,
    SnapshotList,
    SnapshotOut,
    SnapshotWithManifest,
    WorldDetail,
    WorldList,
    WorldOut,
    WorldPut,
)

log = logging.getLogger("homeport.worlds")
router = APIRouter(tags=["worlds"])
WorldPath = Annotated[str, Path(pattern=f"^{WORLD_NAME.pattern}$")]
HashPath = Annotated[str, Path(pattern=SHA256)]
KEY_ERRORS = (identity_errors.ServerKeyInvalid, identity_errors.MissingScope, e.NotWorldOwner)
ADMIN_ERRORS = (identity_errors.ServerKeyInvalid, identity_errors.AdminKeyRequired)
SECURITY = {"security": [{"ServerKey": ["worlds"]}]}
CHUNK_BODY = {
    "required": True,
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}


async def get_worlds(state: StateDep) -> Worlds:
    return state.worlds


WorldsDep = Annotated[Worlds, Depends(get_worlds)]


async def get_writer(worlds: WorldsDep, caller: Annotated[Caller, server_key("worlds")]) -> Writer:
    return await worlds.fleets.writer(caller)


WriterDep = Annotated[Writer, Depends(get_writer)]


@router.get("/v1/worlds", response_model=WorldList, responses=problems(*ADMIN_ERRORS))
async def list_worlds(
    worlds: WorldsDep,
    _admin: AdminDep,
    after: Annotated[str | None, Query(pattern=f"^{WORLD_NAME.pattern}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> WorldList:
    """Every world, by name (admin key)."""
    async with worlds.read_sessions() as session:
        rows = await service.list_worlds(session, after, limit)
        views = [WorldOut.of(await service.view(session, row)) for row in rows]
    return WorldList(worlds=views, next_after=rows[-1].name if len(rows) == limit else None)


@router.put(
    "/v1/worlds/{world}",
    response_model=WorldOut,
    responses={201: {"description": "Created", "model": WorldOut}, **problems(*KEY_ERRORS)},
    openapi_extra=SECURITY,
)
async def put_world(
    world: WorldPath, body: WorldPut, worlds: WorldsDep, writer: WriterDep, response: Response
) -> WorldOut:
    """Create a world ahead of its first save (a first save creates it too), or hand it to
    another owner (admin key). The owner defaults to the caller's fleet, else its key."""
    async with unit_of_work(worlds.sessions) as session:
        row, created = await service.create_or_update(
            session, worlds.clock, world, writer, body.owner
        )
        out = WorldOut.of(await service.view(session, row))
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return out


@router.get(
    "/v1/worlds/{world}",
    response_model=WorldDetail,
    responses=problems(*KEY_ERRORS, e.WorldNotFound),
    openapi_extra=SECURITY,
)
async def get_world(world: WorldPath, worlds: WorldsDep, writer: WriterDep) -> WorldDetail:
    """The world and its latest complete save with the manifest: what a server loads."""
    async with worlds.read_sessions() as session:
        row = await service.open_for_read(session, world, writer)
        view = WorldOut.of(await service.view(session, row))
    latest = await snapshots.read(worlds, world, writer, None)
    return WorldDetail(
        world=view,
        latest=None if latest is None else _with_manifest(*latest),
    )


@router.delete(
    "/v1/worlds/{world}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*ADMIN_ERRORS, e.WorldNotFound),
)
async def delete_world(world: WorldPath, worlds: WorldsDep, _admin: AdminDep) -> None:
    """Delete a world with every snapshot and chunk (admin key)."""
    async with unit_of_work(worlds.sessions) as session:
        await service.delete_world(session, worlds.clock, world)
    try:  # at once if the storage can; else the collector's next pass does it
        await gc.delete_doomed(worlds)
    except Exception:
        log.warning("world %s deleted; its objects wait for the collector", world, exc_info=True)


@router.post(
    "/v1/worlds/{world}/lease",
    response_model=LeaseOut,
    responses=problems(*KEY_ERRORS, e.WorldLeased),
    openapi_extra=SECURITY,
)
async def take_lease(world: WorldPath, worlds: WorldsDep, writer: WriterDep) -> LeaseOut:
    """Take or renew the world's write lease before saving (a save takes it too). 409 while
    another server holds it: it lasts while that server heartbeats, and `worlds_lease_ttl`
    seconds past its last write."""
    async with unit_of_work(worlds.sessions) as session:
        view = await service.take_lease(
            session, worlds.clock, world, writer, worlds.settings.worlds_lease_ttl
        )
    return LeaseOut.of(view)


@router.delete(
    "/v1/worlds/{world}/lease",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*KEY_ERRORS, e.WorldNotFound, e.WorldLeased),
    openapi_extra=SECURITY,
)
async def release_lease(world: WorldPath, worlds: WorldsDep, writer: WriterDep) -> None:
    """Give the lease back (a server shutting down after its last save); an admin key may
    take it from a holder that cannot."""
    async with unit_of_work(worlds.sessions) as session:
        await service.release_lease(session, worlds.clock, world, writer)


@router.post(
    "/v1/worlds/{world}/chunks/missing",
    response_model=MissingResponse,
    responses=problems(*KEY_ERRORS, e.WorldLeased),
    openapi_extra=SECURITY,
)
async def missing_chunks(
    world: WorldPath, body: MissingRequest, worlds: WorldsDep, writer: WriterDep
) -> MissingResponse:
    """Which of these chunk hashes the world lacks: upload only those, then commit. Asking
    takes the lease and keeps the chunks it has from the garbage collector during the save."""
    return MissingResponse(missing=await chunks.missing(worlds, world, writer, body.hashes))


@router.put(
    "/v1/worlds/{world}/chunks/{sha256}",
    response_model=ChunkStored,
    responses={
        201: {"description": "Stored", "model": ChunkStored},
        **problems(*KEY_ERRORS, e.WorldLeased, e.HashMismatch, e.StorageUnavailable),
    },
    openapi_extra={**SECURITY, "requestBody": CHUNK_BODY},
)
async def put_chunk(
    world: WorldPath,
    sha256: HashPath,
    request: Request,
    worlds: WorldsDep,
    writer: WriterDep,
    response: Response,
    content_md5: Annotated[str | None, Header(max_length=64)] = None,
) -> ChunkStored:
    """Upload one chunk's bytes (`application/octet-stream`) under their SHA-256. Refused
    with nothing stored if the bytes hash otherwise (or fail `Content-MD5`); 200 without
    storing anything when the world already has them."""
    created = await chunks.upload(worlds, world, writer, sha256, _body(request), content_md5)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return ChunkStored(world=world, sha256=sha256, created=created)


CHUNK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The chunk"},
    206: {"content": {"application/octet-stream": {}}, "description": "A range of it"},
    304: {"description": "Not modified (If-None-Match)"},
    **problems(
        *KEY_ERRORS, e.WorldNotFound, e.ChunkNotFound, e.RangeNotSatisfiable, e.StorageUnavailable
    ),
}


@router.head(
    "/v1/worlds/{world}/chunks/{sha256}",
    responses=CHUNK_RESPONSES,
    openapi_extra=SECURITY,
    summary="Head Chunk",
    description="Whether the world has a chunk, and its size (`Content-Length`), not its bytes.",
)
@router.get("/v1/worlds/{world}/chunks/{sha256}", responses=CHUNK_RESPONSES, openapi_extra=SECURITY)
async def get_chunk(
    world: WorldPath, sha256: HashPath, request: Request, worlds: WorldsDep, writer: WriterDep
) -> Response:
    """A chunk's bytes, streamed; `ETag` is its hash, `Range: bytes=a-b` reads part of it."""
    chunk = await chunks.for_read(worlds, world, writer, sha256)
    return await chunk_response(worlds, chunk, request)


@router.post(
    "/v1/worlds/{world}/snapshots",
    response_model=SnapshotOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(*KEY_ERRORS, e.WorldLeased, e.SnapshotConflict, e.ChunksMissing),
    openapi_extra=SECURITY,
)
async def commit_snapshot(
    world: WorldPath, body: CommitRequest, worlds: WorldsDep, writer: WriterDep
) -> SnapshotOut:
    """Commit a save: the manifest (chunk id → hash) becomes the world's latest snapshot, all
    at once, once every chunk it names is stored (409 `chunks-missing` lists what is not)."""
    save = snapshots.Commit(body.manifest, body.base, body.changes, body.removed, body.metadata)
    return SnapshotOut.of(await snapshots.commit(worlds, world, writer, save))


@router.get(
    "/v1/worlds/{world}/snapshots",
    response_model=SnapshotList,
    responses=problems(*KEY_ERRORS, e.WorldNotFound),
    openapi_extra=SECURITY,
)
async def list_snapshots(
    world: WorldPath,
    worlds: WorldsDep,
    writer: WriterDep,
    before: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SnapshotList:
    """The world's kept snapshots, newest first."""
    views = await snapshots.history(worlds, world, writer, before, limit)
    return SnapshotList(
        snapshots=[SnapshotOut.of(v) for v in views],
        next_before=views[-1].seq if len(views) == limit else None,
    )


@router.get(
    "/v1/worlds/{world}/snapshots/{seq}",
    response_model=SnapshotWithManifest,
    responses=problems(*KEY_ERRORS, e.WorldNotFound, e.SnapshotNotFound),
    openapi_extra=SECURITY,
)
async def get_snapshot(
    world: WorldPath,
    seq: Annotated[int, Path(ge=1, le=MAX_SEQ)],
    worlds: WorldsDep,
    writer: WriterDep,
) -> SnapshotWithManifest:
    """One kept snapshot with its manifest (to roll back, commit it again as a new save)."""
    found = await snapshots.read(worlds, world, writer, seq)
    if found is None:
        raise e.SnapshotNotFound()
    return _with_manifest(*found)


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request's bytes; a client that leaves mid-way (a killed server) is a 400 that no
    one reads, not an internal error."""
    try:
        async for piece in request.stream():
            yield piece
    except ClientDisconnect as exc:
        raise e.UploadAbandoned() from exc


def _with_manifest(view: snapshots.SnapshotView, manifest: dict[str, str]) -> SnapshotWithManifest:
    return SnapshotWithManifest(**view.__dict__, manifest=manifest)


def raw_bodies(settings: Settings) -> RawRule:
    """The body rule for chunk uploads: bytes, up to a chunk's size, with a longer time."""
    limit, within = settings.worlds_chunk_max_bytes, settings.worlds_chunk_timeout

    def rule(method: str, path: str) -> tuple[int, float] | None:
        if method == "PUT" and path.startswith("/v1/worlds/") and "/chunks/" in path:
            return limit, within
        return None

    return rule
