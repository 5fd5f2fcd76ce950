"""HTTP routes of player documents: `/v1/players/{player}/data/...`.

`{player}` is an account id, or `me` for the signed-in player. A document's version is also its
ETag; writes name the version they replace with `If-Match` (or `version` in a put's body).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Response, status

from homeport.bare import SERVED_BARE
from homeport.deps import SessionDep, StateDep
from homeport.identity import errors as identity_errors
from homeport.observability.instruments import count_save, outcome
from homeport.openapi import problems
from homeport.players import access, documents
from homeport.players import errors as e
from homeport.players.callers import DataCallerDep
from homeport.players.documents import Write, Written
from homeport.players.save_endpoint import requested_version
from homeport.players.schemas import (
    BatchOut,
    BatchRequest,
    CollectionOut,
    DocumentInfo,
    DocumentOut,
    PlayerDataOut,
    PutDocument,
    WriteOp,
    WrittenOut,
)

router = APIRouter(tags=["players"])
DOCUMENT = "/v1/players/{player}/data/{collection}/{key}"
AUTH_ERRORS = (
    identity_errors.TokenMissing,
    identity_errors.TokenInvalid,
    identity_errors.TokenExpired,
    identity_errors.SessionRevoked,
    identity_errors.ServerKeyInvalid,
    identity_errors.MissingScope,
    e.PlayerNotFound,
    e.CollectionForbidden,
)
WRITE_ERRORS = (
    *AUTH_ERRORS,
    e.VersionConflict,
    e.VersionRequired,
    e.DocumentNotFound,
    e.DocumentTooLarge,
    e.PlayerDataFull,
)
PlayerRef = Annotated[str, Path(max_length=64, description="An account id, or `me`")]
CollectionName = Annotated[str, Path(pattern=r"^[a-z0-9_][a-z0-9_.\-]{0,63}$")]
Key = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")]
IfMatch = Annotated[str | None, Header(max_length=32)]


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def _document_out(player_id: uuid.UUID, written: Written) -> DocumentOut:
    assert written.value is not None
    return DocumentOut(
        player_id=player_id,
        collection=written.collection,
        key=written.key,
        value=written.value,
        version=written.version,
        updated_at=written.updated_at,
    )


@router.get(
    "/v1/players/{player}/data",
    response_model=PlayerDataOut,
    responses=problems(*AUTH_ERRORS),
)
async def player_data_index(
    player: PlayerRef, caller: DataCallerDep, state: StateDep
) -> PlayerDataOut:
    """The player's collections and documents (versions and sizes, not values) that the caller
    may read."""
    player_id = access.resolve_player(caller, player)
    access.require_key_scope(caller, access.READ)
    async with state.read_sessions() as session:
        rows = await documents.document_index(session, player_id)
    collections: dict[str, list[DocumentInfo]] = {}
    for collection, key, version, size, updated_at in rows:
        if access.may_read(caller, state.settings, player_id, collection):
            collections.setdefault(collection, []).append(
                DocumentInfo(key=key, version=version, size=size, updated_at=updated_at)
            )
    return PlayerDataOut(collections=collections)


@router.post(
    "/v1/players/{player}/data",
    response_model=BatchOut,
    responses=problems(*WRITE_ERRORS),
)
async def write_batch(
    player: PlayerRef,
    body: BatchRequest,
    caller: DataCallerDep,
    state: StateDep,
    session: SessionDep,
) -> BatchOut:
    """Write several documents of one player at once, all or none: the "player disconnected,
    save everything" moment. A refused item answers its own problem, with its `index`."""
    with outcome(count_save("batch")):
        player_id = access.resolve_player(caller, player)
        for item in body.writes:
            access.require_write(caller, state.settings, player_id, item.collection)
        writes = [
            Write(item.op, item.collection, item.key, item.value, item.patch, item.version)
            for item in body.writes
        ]
        written = await documents.write_documents(
            session, state.clock, state.settings, player_id, writes
        )
    return BatchOut(
        writes=[WrittenOut(collection=w.collection, key=w.key, version=w.version) for w in written]
    )


@router.get(
    "/v1/players/{player}/data/{collection}",
    response_model=CollectionOut,
    responses=problems(*AUTH_ERRORS),
)
async def read_collection(
    player: PlayerRef, collection: CollectionName, caller: DataCallerDep, state: StateDep
) -> CollectionOut:
    """Every document of one collection of the player, with values."""
    player_id = access.resolve_player(caller, player)
    access.require_read(caller, state.settings, player_id, collection)
    async with state.read_sessions() as session:
        rows = await documents.collection_documents(session, player_id, collection)
    return CollectionOut(
        collection=collection,
        documents=[
            DocumentOut(
                player_id=player_id,
                collection=r.collection,
                key=r.key,
                value=r.value,
                version=r.version,
                updated_at=r.updated_at,
            )
            for r in rows
        ],
    )


@router.get(DOCUMENT, response_model=DocumentOut, responses=problems(*AUTH_ERRORS))
async def read_document(
    player: PlayerRef,
    collection: CollectionName,
    key: Key,
    caller: DataCallerDep,
    state: StateDep,
    response: Response,
) -> DocumentOut:
    """One document; its version is also the ETag."""
    player_id = access.resolve_player(caller, player)
    access.require_read(caller, state.settings, player_id, collection)
    async with state.read_sessions() as session:
        row = await documents.get_document(session, player_id, collection, key)
    response.headers.update(_etag(row.version))
    return DocumentOut(
        player_id=player_id,
        collection=row.collection,
        key=row.key,
        value=row.value,
        version=row.version,
        updated_at=row.updated_at,
    )


async def _write_one(
    caller: DataCallerDep,
    state: StateDep,
    session: SessionDep,
    player: str,
    write: Write,
    response: Response,
) -> tuple[uuid.UUID, Written]:
    player_id = access.resolve_player(caller, player)
    access.require_write(caller, state.settings, player_id, write.collection)
    (written,) = await documents.write_documents(
        session, state.clock, state.settings, player_id, [write]
    )
    response.headers.update(_etag(written.version))
    return player_id, written


@router.put(DOCUMENT, response_model=DocumentOut, responses=problems(*WRITE_ERRORS))
async def put_document(
    player: PlayerRef,
    collection: CollectionName,
    key: Key,
    body: PutDocument,
    if_match: IfMatch = None,
) -> DocumentOut:
    """Replace (or create) the whole document. Name the version it replaces with `If-Match`
    or `version` (0: create only); a stale version gets 409 `version-conflict`. Saves are
    written in groups, each answered once committed."""
    raise AssertionError(SERVED_BARE)  # well-formed paths go to `save_endpoint`


@router.patch(DOCUMENT, response_model=DocumentOut, responses=problems(*WRITE_ERRORS))
async def patch_document(
    player: PlayerRef,
    collection: CollectionName,
    key: Key,
    patch: Annotated[dict[str, Any], Body(description="An RFC 7396 JSON merge patch")],
    caller: DataCallerDep,
    state: StateDep,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> DocumentOut:
    """Change part of the document with an RFC 7396 merge patch (`null` removes a field).
    Name the version it applies to with `If-Match`; a missing document is patched from `{}`."""
    version = requested_version(if_match, None)
    write = Write(WriteOp.PATCH, collection, key, patch=patch, version=version)
    with outcome(count_save("patch")):
        return _document_out(*await _write_one(caller, state, session, player, write, response))


@router.delete(
    DOCUMENT,
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*WRITE_ERRORS),
)
async def delete_document(
    player: PlayerRef,
    collection: CollectionName,
    key: Key,
    caller: DataCallerDep,
    state: StateDep,
    session: SessionDep,
    if_match: IfMatch = None,
) -> Response:
    """Delete the document (with `If-Match` where the collection takes only versioned writes)."""
    write = Write(WriteOp.DELETE, collection, key, version=requested_version(if_match, None))
    await _write_one(caller, state, session, player, write, Response())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
