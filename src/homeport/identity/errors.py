"""Identity refusals. Each token refusal has its own `type` so a dedicated server can log why."""

from __future__ import annotations

from homeport.errors import Conflict, Forbidden, NotFound, Unauthorized, UnprocessableContent


class InvalidCredentials(Unauthorized):
    slug = "invalid-credentials"
    title = "Email or password is wrong"


class TokenMissing(Unauthorized):
    slug = "token-missing"
    title = "No bearer token was given"


class TokenInvalid(Unauthorized):
    slug = "token-invalid"
    title = "The token is malformed, forged or signed by an unknown key"


class TokenWrongAudience(Unauthorized):
    slug = "token-wrong-audience"
    title = "The token was issued for another audience"


class TokenExpired(Unauthorized):
    slug = "token-expired"
    title = "The token has expired"


class SessionRevoked(Unauthorized):
    slug = "session-revoked"
    title = "The session was revoked or has ended"


class PlayerBanned(Unauthorized):
    slug = "player-banned"
    title = "The player is banned"


class RefreshTokenInvalid(Unauthorized):
    slug = "refresh-token-invalid"
    title = "The refresh token is unknown or expired"


class RefreshTokenReused(Unauthorized):
    slug = "refresh-token-reused"
    title = "A spent refresh token was replayed; the session is revoked"
    keeps_writes = True


class ServerKeyInvalid(Unauthorized):
    slug = "server-key-invalid"
    title = "The server API key is missing, unknown or revoked"


class MissingScope(Forbidden):
    slug = "missing-scope"
    title = "The API key lacks the scope this endpoint needs"


class AdminKeyRequired(Forbidden):
    slug = "admin-key-required"
    title = "This endpoint needs an admin key"


class EmailTaken(Conflict):
    slug = "email-taken"
    title = "An account with this email exists"


class AlreadyLinked(Conflict):
    slug = "already-linked"
    title = "This account already has an email and password"


class KeyNameTaken(Conflict):
    slug = "key-name-taken"
    title = "A key with this name exists"


class PlayerNotFound(NotFound):
    slug = "player-not-found"
    title = "No such player"


class KeyNotFound(NotFound):
    slug = "key-not-found"
    title = "No such key"


class WeakPassword(UnprocessableContent):
    slug = "password-rejected"
    title = "The password does not meet the length rules"
