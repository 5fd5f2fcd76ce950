"""Signing keys: persisted, published as JWKS, rotated without logging anyone out."""

from __future__ import annotations

import base64
import hmac
import json
import stat
import uuid
from hashlib import sha256

import httpx
import jwt
from cryptography.hazmat.primitives import serialization

from homeport.clock import FakeClock
from homeport.identity.signing import KeyRing, KeyStore
from homeport.identity.tokens import TokenIssuer
from homeport.state import AppState
from tests.factories import bearer, make_key, problem_type, register


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_jwks_publishes_the_public_key_that_verifies_tokens(
    client: httpx.AsyncClient,
) -> None:
    pair = await register(client)
    jwks = (await client.get("/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(pair["access_token"])["kid"]
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    assert jwk["alg"] == "EdDSA"
    assert "d" not in jwk
    public = jwt.PyJWK(jwk).key
    claims = jwt.decode(
        pair["access_token"],
        public,
        algorithms=["EdDSA"],
        audience="homeport-game",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == pair["player"]["id"]
    assert claims["sid"] == pair["session_id"]
    assert claims["iss"] == "homeport"
    assert claims["exp"] - claims["iat"] == 900


async def test_private_keys_are_stored_owner_only(state: AppState) -> None:
    path = state.settings.keys_dir / "signing.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_rotation_keeps_old_tokens_valid_until_they_expire(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    key = await make_key(state)
    old = await register(client)
    old_kid = jwt.get_unverified_header(old["access_token"])["kid"]

    new_key = KeyStore(state.settings, clock).rotate()  # as `homeport keys rotate-signing` does
    clock.advance(2)  # past the key file re-read interval
    new = await register(client)
    assert jwt.get_unverified_header(new["access_token"])["kid"] == new_key.kid != old_kid

    kids = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert kids == {old_kid, new_key.kid}
    for pair in (old, new):
        ok = await client.post(
            "/v1/validate", headers=bearer(key), json={"player_token": pair["access_token"]}
        )
        assert ok.status_code == 200

    # Once every token of the old key has expired, a later rotation drops it.
    clock.advance(state.settings.auth_access_ttl + 120)
    KeyStore(state.settings, clock).rotate()
    clock.advance(2)
    kids = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert old_kid not in kids
    assert new_key.kid in kids


async def test_forged_tokens_are_refused(client: httpx.AsyncClient, state: AppState) -> None:
    key = await make_key(state)
    pair = await register(client)
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    kid = jwt.get_unverified_header(pair["access_token"])["kid"]
    public_pem = state.identity.ring.signing_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header_none = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(claims).encode())
    hs_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    hs_sig = _b64(hmac.new(public_pem, f"{hs_header}.{body}".encode(), sha256).digest())
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    stranger = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
    )
    unknown_kid = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "nope"}
    )
    for forged in (f"{header_none}.{body}.", f"{hs_header}.{body}.{hs_sig}", stranger, unknown_kid):
        response = await client.post(
            "/v1/validate", headers=bearer(key), json={"player_token": forged}
        )
        assert response.status_code == 401, forged
        assert problem_type(response) == "token-invalid"


async def test_token_from_a_key_rotated_elsewhere_verifies_at_once(
    client: httpx.AsyncClient, state: AppState, clock: FakeClock
) -> None:
    """Another worker already signs with a new key; this one must not refuse its tokens."""
    key = await make_key(state)
    pair = await register(client)
    assert jwt.get_unverified_header(pair["access_token"])["kid"]  # this process's ring is warm
    KeyStore(state.settings, clock).rotate()
    other = TokenIssuer(state.settings, clock, KeyRing(KeyStore(state.settings, clock), clock))
    token, _ = other.issue(uuid.UUID(pair["player"]["id"]), uuid.UUID(pair["session_id"]))
    response = await client.post("/v1/validate", headers=bearer(key), json={"player_token": token})
    assert response.status_code == 200, response.text
