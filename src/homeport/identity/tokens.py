"""Access tokens: EdDSA-signed JWTs carrying the player (`sub`) and session (`sid`) ids.

Expiry is checked against the injected clock rather than PyJWT's own `time.time()`, so token
lifetimes are testable. A verified signature never changes, so verified claims are cached per
token string until the token expires; that keeps Ed25519 off the hot path of `/v1/validate`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt

from homeport.clock import Clock
from homeport.identity.errors import TokenExpired, TokenInvalid, TokenWrongAudience
from homeport.identity.signing import KeyRing
from homeport.settings import Settings
from homeport.timefmt import rfc3339

MAX_TOKEN_LENGTH = 4096
CLOCK_SKEW = timedelta(seconds=60)
_REQUIRED = ["exp", "iat", "sub", "sid", "iss", "aud"]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    player_id: uuid.UUID
    session_id: uuid.UUID
    issued_at: datetime
    expires_at: datetime
    # Rendered once per token rather than once per validation.
    session_text: str = field(init=False)
    expires_text: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "session_text", str(self.session_id))
        object.__setattr__(self, "expires_text", rfc3339(self.expires_at))


class TokenIssuer:
    def __init__(self, settings: Settings, clock: Clock, ring: KeyRing) -> None:
        self._settings = settings
        self._clock = clock
        self._ring = ring
        self._verified: dict[str, AccessClaims] = {}
        self._max_cached = 100_000

    def issue(self, player_id: uuid.UUID, session_id: uuid.UUID) -> tuple[str, AccessClaims]:
        now = self._clock.now().replace(microsecond=0)
        exp = now + timedelta(seconds=self._settings.auth_access_ttl)
        key = self._ring.signing_key
        payload = {
            "iss": self._settings.auth_issuer,
            "aud": self._settings.auth_audience,
            "sub": str(player_id),
            "sid": str(session_id),
            "iat": int(now.timestamp()),
            "exp": int(exp.timestamp()),
        }
        token = jwt.encode(payload, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
        return token, AccessClaims(player_id, session_id, now, exp)

    def verify(self, token: str) -> AccessClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify_signature(token)
            if len(self._verified) >= self._max_cached:
                self._evict()
            self._verified[token] = claims
        if self._clock.now() >= claims.expires_at:
            raise TokenExpired()
        return claims

    def _verify_signature(self, token: str) -> AccessClaims:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenInvalid("The token is empty or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise TokenInvalid("The token is not a JWT") from exc
        if header.get("alg") != "EdDSA":
            raise TokenInvalid("The token is not signed with EdDSA")
        kid = header.get("kid")
        key = self._ring.public_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenInvalid("The token names an unknown signing key")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=self._settings.auth_audience,
                issuer=self._settings.auth_issuer,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": _REQUIRED,
                },
            )
        except jwt.InvalidAudienceError as exc:
            raise TokenWrongAudience() from exc
        except jwt.InvalidTokenError as exc:
            raise TokenInvalid(f"The token was refused: {exc}") from exc
        try:
            player_id = uuid.UUID(payload["sub"])
            session_id = uuid.UUID(payload["sid"])
            issued = datetime.fromtimestamp(int(payload["iat"]), self._clock.now().tzinfo)
            expires = datetime.fromtimestamp(int(payload["exp"]), self._clock.now().tzinfo)
        except (ValueError, TypeError, OverflowError) as exc:
            raise TokenInvalid("The token's claims are malformed") from exc
        if issued > self._clock.now() + CLOCK_SKEW:
            raise TokenInvalid("The token was issued in the future")
        return AccessClaims(player_id, session_id, issued, expires)

    def _evict(self) -> None:
        now = self._clock.now()
        live = {t: c for t, c in self._verified.items() if c.expires_at > now}
        if len(live) >= self._max_cached:
            live = dict(list(live.items())[len(live) // 2 :])
        self._verified = live
