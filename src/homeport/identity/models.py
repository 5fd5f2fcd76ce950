"""Identity tables: accounts, their device logins, sessions, refresh tokens and server keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from homeport.db.base import Base, UUIDPrimaryKey


class Account(UUIDPrimaryKey, Base):
    __tablename__ = "accounts"

    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    """Normalised (trimmed, lower-cased); None for an anonymous device account."""
    password_hash: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(64))
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    banned_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def is_anonymous(self) -> bool:
        return self.email is None


class Device(Base):
    """A device id that logs in to an account. Stored hashed: it is a bearer credential."""

    __tablename__ = "devices"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]


class Session(UUIDPrimaryKey, Base):
    """One login. Access tokens carry its id (`sid`); revoking it refuses them all."""

    __tablename__ = "sessions"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    refresh_count: Mapped[int] = mapped_column(Integer, default=0)


class RefreshToken(Base):
    """Every refresh token ever issued, so that replaying a spent one can be recognised."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    spent_at: Mapped[datetime | None]


class ServerKey(UUIDPrimaryKey, Base):
    """An API key for dedicated servers (`hp_sk_…`) or operators (`hp_admin_…`)."""

    __tablename__ = "server_keys"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    lookup: Mapped[str] = mapped_column(String(16), unique=True)
    """The public first characters of the secret, to find the row before comparing hashes."""
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(500))
    """Space-separated scope names."""
    server_id: Mapped[uuid.UUID | None]
    """Set for a fleet server's own key: the one server it may register, as that id."""
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuthEvent(Base):
    """A change every process must drop from its auth caches: a revoked session, a ban, a key.

    Processes poll this table (see `identity.auth_events`), so a revocation made by the CLI or
    another replica reaches their `/v1/validate` caches within `auth_cache_ttl` seconds.
    """

    __tablename__ = "auth_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(index=True)
