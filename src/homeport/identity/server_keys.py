"""Server and admin API keys: `hp_sk_<secret>` and `hp_admin_<secret>`, stored only as hashes.

The first characters of the secret are a public lookup id; the row they find is accepted only if
the SHA-256 of the whole key matches, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from enum import StrEnum

SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 40
LOOKUP_LENGTH = 12
_SECRET = re.compile(f"[A-Za-z0-9]{{{SECRET_LENGTH}}}")


class KeyKind(StrEnum):
    SERVER = "server"
    ADMIN = "admin"


PREFIXES = {KeyKind.SERVER: "hp_sk_", KeyKind.ADMIN: "hp_admin_"}

SCOPES = frozenset(
    {
        "validate",
        "registry",
        "players:read",
        "players:write",
        "leaderboards",
        "matchmaking",
        "fleet",
        "worlds",
    }
)


def generate(kind: KeyKind) -> tuple[str, str, str]:
    """A new key: (the key to show once, its lookup id, its hash)."""
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    key = PREFIXES[kind] + secret
    return key, secret[:LOOKUP_LENGTH], hash_key(key)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse(key: str) -> tuple[KeyKind, str] | None:
    """The kind and lookup id of a well-formed key, or None."""
    for kind, prefix in PREFIXES.items():
        if key.startswith(prefix):
            secret = key[len(prefix) :]
            if _SECRET.fullmatch(secret):
                return kind, secret[:LOOKUP_LENGTH]
    return None


def matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.replace(",", " ").split() if s.strip())
    unknown = scopes - SCOPES
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    return scopes
