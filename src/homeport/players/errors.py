"""Refusals of player data and inventory. Each `type` tells a game server what to do next:
re-read and retry (`version-conflict`), fix the request, or give up."""

from __future__ import annotations

from homeport.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionRequired,
    UnprocessableContent,
)


class PlayerNotFound(NotFound):
    slug = "player-not-found"
    title = "No player has this id"


class DocumentNotFound(NotFound):
    slug = "document-not-found"
    title = "The player has no document under this collection and key"


class VersionConflict(Conflict):
    slug = "version-conflict"
    title = "The document changed since the version this write was based on"


class VersionRequired(PreconditionRequired):
    slug = "version-required"
    title = "Writes to this collection must name the version they replace"


class DocumentTooLarge(PayloadTooLarge):
    slug = "document-too-large"
    title = "The document is larger than the limit"


class PlayerDataFull(PayloadTooLarge):
    slug = "player-data-full"
    title = "The player's documents would exceed their storage limit"


class CollectionForbidden(Forbidden):
    slug = "collection-forbidden"
    title = "This caller may not access this collection of this player"


class InsufficientItems(Conflict):
    slug = "insufficient-items"
    title = "The player does not hold enough of an item"


class IdempotencyKeyRequired(PreconditionRequired):
    slug = "idempotency-key-required"
    title = "Inventory changes need an Idempotency-Key header"


class IdempotencyKeyReused(UnprocessableContent):
    slug = "idempotency-key-reused"
    title = "This Idempotency-Key was used for a different request"
