"""Ed25519 signing keys for access tokens, kept in `<data_dir>/keys/signing.json`.

The newest key signs; retired keys keep verifying until every token they signed has expired,
then they are dropped. `homeport keys rotate-signing` may run beside a live server: the file is
replaced atomically and every process re-reads it when its modification time changes.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from homeport.clock import Clock
from homeport.settings import Settings

RELOAD_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    created_at: datetime
    retired_at: datetime | None

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def jwk(self) -> dict[str, str]:
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": x,
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }


def _encode(key: SigningKey) -> dict[str, Any]:
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {
        "kid": key.kid,
        "private_key_pem": pem.decode(),
        "created_at": key.created_at.isoformat(),
        "retired_at": key.retired_at.isoformat() if key.retired_at else None,
    }


def _decode(item: dict[str, Any]) -> SigningKey:
    private = serialization.load_pem_private_key(item["private_key_pem"].encode(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"signing key {item['kid']} is not Ed25519")
    retired = item.get("retired_at")
    return SigningKey(
        kid=item["kid"],
        private_key=private,
        created_at=datetime.fromisoformat(item["created_at"]),
        retired_at=datetime.fromisoformat(retired) if retired else None,
    )


def _new_key(now: datetime) -> SigningKey:
    kid = now.strftime("%Y%m%d") + "-" + secrets.token_hex(4)
    return SigningKey(kid, Ed25519PrivateKey.generate(), now, None)


class KeyStore:
    """The key file and the lock that serialises writers (several workers, the CLI)."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._dir = settings.keys_dir
        self.path = self._dir / "signing.json"
        self._clock = clock
        self._max_token_age = timedelta(seconds=settings.auth_access_ttl + 60)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self._dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> list[SigningKey]:
        data = json.loads(self.path.read_text())
        return [_decode(item) for item in data["keys"]]

    def _write(self, keys: list[SigningKey]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"keys": [_encode(k) for k in keys]}, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def ensure(self) -> list[SigningKey]:
        """Create the first key if there is none; return the keys in use."""
        with self._locked():
            if not self.path.exists():
                self._write([_new_key(self._clock.now())])
            return self.read()

    def rotate(self) -> SigningKey:
        """Retire the signing key, start a new one, and drop keys no live token can need."""
        with self._locked():
            now = self._clock.now()
            old = self.read() if self.path.exists() else []
            kept = [
                k if k.retired_at else SigningKey(k.kid, k.private_key, k.created_at, now)
                for k in old
                if k.retired_at is None or now - k.retired_at < self._max_token_age
            ]
            new = _new_key(now)
            self._write([new, *kept])
            return new

    def version(self) -> tuple[int, int, int] | None:
        """Identifies the file's content cheaply; None when there is no file."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)


class KeyRing:
    """The keys a process signs and verifies with, re-read when the file changes."""

    def __init__(self, store: KeyStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._version: tuple[int, int, int] | None = None
        self._checked_at = float("-inf")
        self._signing: SigningKey | None = None
        self._verifying: dict[str, Ed25519PublicKey] = {}
        self._jwks: list[dict[str, str]] = []
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> None:
        now = self._clock.monotonic()
        if not force and now - self._checked_at < RELOAD_CHECK_SECONDS:
            return
        self._checked_at = now
        # Taken before reading: if a rotation lands in between, the next check reloads again.
        version = self._store.version()
        if version == self._version and self._signing is not None:
            return
        keys = self._store.ensure() if version is None else self._store.read()
        self._version = version
        active = [k for k in keys if k.retired_at is None]
        self._signing = max(active or keys, key=lambda k: k.created_at)
        self._verifying = {k.kid: k.public_key for k in keys}
        self._jwks = [k.jwk() for k in keys]

    @property
    def signing_key(self) -> SigningKey:
        self.refresh()
        assert self._signing is not None
        return self._signing

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        key = self._verifying.get(kid)
        if key is None:
            # A token from a key this process has not seen yet: another process may have
            # rotated. A stat is cheap, so look at once rather than after the usual interval.
            self.refresh(force=True)
            key = self._verifying.get(kid)
        return key

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        self.refresh()
        return {"keys": list(self._jwks)}
