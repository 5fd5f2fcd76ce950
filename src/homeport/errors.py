"""Typed domain errors, rendered once as RFC 9457 problem+json by `homeport.problems`.

Services raise these; they know nothing of HTTP beyond the status number. Every error has a
stable `type` (`urn:homeport:problem:<slug>`) that clients and dedicated servers switch on::

    HomeportError (500)
    ├── BadRequest (400)
    ├── Unauthorized (401)          identity.errors: InvalidCredentials, TokenInvalid, TokenExpired,
    │                               SessionRevoked, PlayerBanned, ServerKeyInvalid, ...
    ├── Forbidden (403)             identity.errors: MissingScope
    ├── NotFound (404)
    ├── Conflict (409)              identity.errors: EmailTaken, AlreadyLinked;
    │                               players.errors: VersionConflict, InsufficientItems
    ├── PayloadTooLarge (413)
    ├── UnsupportedMediaType (415)
    ├── UnprocessableContent (422)  request bodies that fail validation
    ├── PreconditionRequired (428)  players.errors: VersionRequired, IdempotencyKeyRequired
    ├── RateLimited (429)           carries `retry_after` seconds
    └── Unavailable (503)
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_TYPE_PREFIX = "urn:homeport:problem:"


class HomeportError(Exception):
    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"
    keeps_writes: ClassVar[bool] = False
    """True when the refusal is itself a write that must persist (see `db.session`)."""

    def __init__(self, detail: str | None = None, **extras: Any) -> None:
        self.detail = detail or self.title
        self.extras = extras
        super().__init__(self.detail)

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug

    def headers(self) -> dict[str, str]:
        return {}

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            body["instance"] = instance
        body.update(self.extras)
        return body


class BadRequest(HomeportError):
    status = 400
    slug = "bad-request"
    title = "Bad request"


class Unauthorized(HomeportError):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(HomeportError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFound(HomeportError):
    status = 404
    slug = "not-found"
    title = "Not found"


class MethodNotAllowed(HomeportError):
    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class Conflict(HomeportError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PayloadTooLarge(HomeportError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class BodyNotRead(PayloadTooLarge):
    """Too large, refused before the body was read: the rest of it is still on its way, so the
    connection cannot carry another request and the client must be told it closes."""

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}


class RequestTimeout(HomeportError):
    status = 408
    slug = "request-timeout"
    title = "The request body did not arrive in time"

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}


class UnsupportedMediaType(HomeportError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class UnprocessableContent(HomeportError):
    status = 422
    slug = "validation-failed"
    title = "Request body or parameters are invalid"


class PreconditionRequired(HomeportError):
    status = 428
    slug = "precondition-required"
    title = "This request must say which state it expects"


class RateLimited(HomeportError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extras: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extras)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Unavailable(HomeportError):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"
