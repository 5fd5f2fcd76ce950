"""The one settings object.

Values come, highest priority first, from keyword arguments (tests), `HOMEPORT_*` environment
variables, and an optional TOML file (`HOMEPORT_CONFIG`, else `./homeport.toml` when present).
The defaults are the embedded mode: SQLite and keys under `./homeport-data`, no other service.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from homeport.fleet.spec import FLEET_NAME, FleetSpec
from homeport.matchmaking.queues import QUEUE_NAME, QueueSpec

CONFIG_ENV = "HOMEPORT_CONFIG"
DEFAULT_CONFIG_FILE = "homeport.toml"


def _config_file() -> Path | None:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            # Silently falling back to defaults would point the CLI at another database.
            raise ValueError(f"{CONFIG_ENV} names {explicit}, which is not a file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


class CollectionRule(BaseModel):
    """Access to one collection of player documents. Servers (scope `players:read` or
    `players:write`) always may; these say what players may."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    read: Literal["public", "owner", "server"] = "server"
    """public: any player; owner: the player the documents belong to; server: no player."""
    write: Literal["owner", "server"] = "server"
    """owner: the player may write their own documents; server: only servers may."""
    unversioned_writes: bool = False
    """Allow writes without a version (last writer wins); otherwise a write must name the
    version it replaces, so a stale server cannot overwrite newer data."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOMEPORT_", extra="forbid", frozen=True)

    data_dir: Path = Path("homeport-data")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    """text: `[LEVEL] logger: message` lines; json: one JSON object per line, with the
    request id, and an access line per request."""
    metrics_token: str | None = Field(None, min_length=16, max_length=256)
    """When set, `GET /metrics` wants `Authorization: Bearer <token>`; unset, it is open."""
    metrics_dir: Path | None = None
    """Where the processes of `homeport serve` keep their counters (emptied at each start);
    unset: a directory in /dev/shm (memory), or DATA_DIR/metrics without one."""
    metrics_state_ttl: float = Field(2.0, ge=0, le=300)
    """Seconds the gauges read from the database (servers, fleets, tickets) are reused."""

    db_url: str | None = None
    """SQLAlchemy async URL; unset means the embedded SQLite file in `data_dir`."""
    db_pool_size: int = Field(10, ge=1, le=200)
    db_sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """SQLite durability: NORMAL survives a crash of Homeport, FULL also power loss (slower)."""
    db_sqlite_busy_timeout: float = Field(10.0, ge=0, le=300)
    """Seconds a SQLite writer waits for another process's write lock before answering 503."""
    db_auto_migrate: bool | None = None
    """Upgrade the schema when serving; unset means yes for SQLite, no for PostgreSQL."""

    auth_issuer: str = "homeport"
    auth_audience: str = "homeport-game"
    auth_access_ttl: int = Field(900, ge=30, le=86_400)
    auth_refresh_ttl: int = Field(30 * 86_400, ge=300, le=365 * 86_400)
    auth_cache_ttl: float = Field(2.0, ge=0, le=60)
    """How stale `/v1/validate` may be about a revocation made by another process (seconds);
    0 turns the validate caches off."""
    auth_cache_max_age: float = Field(60.0, ge=1, le=3600)
    """How long a cached session or key is kept at most, for changes made outside Homeport."""
    auth_login_max_failures: int = Field(5, ge=1)
    auth_login_failure_window: int = Field(300, ge=1)
    auth_address_max_attempts: int = Field(30, ge=1)
    auth_address_window: int = Field(60, ge=1)
    password_min_length: int = Field(8, ge=8, le=128)
    password_max_length: int = Field(128, ge=8, le=1024)
    argon2_time_cost: int = Field(3, ge=1, le=20)
    argon2_memory_kib: int = Field(65_536, ge=1_024, le=4_194_304)
    argon2_parallelism: int = Field(4, ge=1, le=16)

    events_poll_interval: float = Field(0.25, gt=0, le=60)
    """How often, on SQLite, each process reads new events for its subscribers (seconds)."""
    events_retention: int = Field(86_400, ge=60)
    """How long the events table keeps an event (seconds)."""
    leader_check_interval: float = Field(2.0, gt=0, le=60)
    """How often a process that is not the leader tries to become it, and the leader checks
    that it still is (seconds): the failover time of leader-only loops."""

    registry_heartbeat_interval: int = Field(30, ge=1, le=3600)
    """Seconds between a dedicated server's heartbeats, as told to it when it registers."""
    registry_lease_intervals: int = Field(3, ge=2, le=20)
    """Heartbeat intervals a server may miss before it drops out of the list."""
    registry_purge_interval: float = Field(5.0, gt=0, le=3600)
    """How often the leader deletes servers whose lease ran out (seconds)."""
    registry_list_requires_player: bool = False
    """Whether `GET /v1/servers` needs a player's access token."""
    registry_page_size_max: int = Field(100, ge=1, le=1000)
    registry_metadata_max_bytes: int = Field(4096, ge=64, le=65_536)
    """Size limit of a server's `metadata` and `private_metadata`, each, as compact JSON."""
    registry_join_ticket_ttl: int = Field(60, ge=5, le=3600)

    players_collections: dict[str, CollectionRule] = Field(
        default_factory=lambda: {
            "profile": CollectionRule(read="owner", write="server"),
            "settings": CollectionRule(read="owner", write="owner", unversioned_writes=True),
        }
    )
    """Who may read and write each collection of player documents; any other collection is
    read and written by servers only, with versions."""
    players_validate_collections: list[str] = ["profile"]
    """Collections whose documents `POST /v1/validate` returns in `data`."""
    players_document_max_bytes: int = Field(65_536, ge=256, le=1_048_576)
    """Largest player document, as compact JSON."""
    players_player_max_bytes: int = Field(1_048_576, ge=1024, le=268_435_456)
    """One player's documents in collections only servers write, together (each counted as
    its JSON, its collection and key, and 64 bytes)."""
    players_owner_max_bytes: int = Field(262_144, ge=1024, le=268_435_456)
    """The same, for collections the player writes: a budget of its own, so a player filling
    theirs never blocks a server's save."""
    players_max_documents: int = Field(1000, ge=1, le=1_000_000)
    """Documents one player may have, in all collections."""
    players_request_max_bytes: int = Field(1_048_576, ge=1024, le=268_435_456)
    """Largest request body under `/v1/players/` (a batch saving several documents at once)."""
    players_tombstone_ttl: int = Field(30 * 86_400, ge=3600, le=3650 * 86_400)
    """Seconds a deleted document's version is remembered, so a server still holding one of
    its versions cannot overwrite the document if it is created again meanwhile."""
    players_idempotency_ttl: int = Field(86_400, ge=60, le=30 * 86_400)
    """Seconds an inventory `Idempotency-Key` is remembered (its retry answers the same)."""

    fleets: dict[str, FleetSpec] = {}
    """Fleets defined here (`[fleets.NAME]` in homeport.toml); stored at start, so the admin
    API and every process see them. A fleet removed from here keeps running until deleted."""
    fleet_enabled: bool = True
    """Whether `homeport serve` runs the fleet agent that starts and stops local servers."""
    fleet_public_url: str | None = None
    """HOMEPORT_URL given to fleet servers; unset: this server's own address."""
    fleet_reconcile_interval: float = Field(1.0, gt=0, le=60)
    """How often the fleet agent compares what runs with what should (seconds)."""
    fleet_allocation_timeout: float = Field(30.0, ge=0, le=600)
    """Longest wait of `POST /v1/fleets/{fleet}/allocate` for a server to become ready."""
    fleet_crash_backoff: float = Field(1.0, gt=0, le=600)
    """First wait after a crash before the next start; doubles with each further crash."""
    fleet_crash_backoff_max: float = Field(300.0, gt=0, le=86_400)
    fleet_log_max_bytes: int = Field(10_485_760, ge=4096)
    """Size at which a server's log file is rotated."""
    fleet_log_backups: int = Field(3, ge=0, le=100)
    fleet_admin_commands: bool = False
    """Whether the admin API may set a fleet's command, directory and environment: with the
    local provider that runs programs on this machine, so it is off unless asked for."""
    fleet_retention: int = Field(86_400, ge=60)
    """How long ended servers stay listed (seconds)."""

    matchmaking_queues: dict[str, QueueSpec] = {}
    """Queues defined here (`[matchmaking_queues.NAME]` in homeport.toml), stored at start."""
    matchmaking_pass_interval: float = Field(1.0, gt=0, le=60)
    """Seconds between matcher passes (one process runs them)."""
    matchmaking_connect_ttl: int = Field(120, ge=5, le=3600)
    """Lifetime of a match's connect token (a join ticket for its server), seconds."""
    matchmaking_wait_max: float = Field(30.0, ge=0, le=120)
    """Longest long poll of a ticket (`?wait=`), seconds."""
    matchmaking_ratings_collection: str = Field("ratings", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    """The player-document collection that holds ratings, one document per rating pool."""

    worlds_storage: Literal["local", "s3"] = "local"
    """Where world chunks live: a directory (`worlds_path`, default DATA_DIR/worlds) or S3."""
    worlds_path: Path | None = None
    worlds_chunk_max_bytes: int = Field(32 * 1024 * 1024, ge=1024, le=5 * 1024**3)
    worlds_chunk_timeout: float = Field(300.0, gt=0, le=3600)
    """Seconds one chunk's body may take to arrive."""
    worlds_manifest_max_chunks: int = Field(65_536, ge=1, le=1_000_000)
    worlds_manifest_max_bytes: int = Field(16 * 1024 * 1024, ge=65_536, le=268_435_456)
    """Largest snapshot commit body (a whole manifest)."""
    worlds_lease_ttl: int = Field(60, ge=5, le=86_400)
    """Seconds a world's write lease lasts past its holder's last write; it also lasts while
    the holder's registry entry is live, so a heartbeating server keeps it."""
    worlds_keep_last: int = Field(10, ge=1, le=10_000)
    """Snapshots kept per world, newest first, besides the daily ones."""
    worlds_keep_daily_days: int = Field(7, ge=0, le=3650)
    """Days (UTC) for which each world keeps its last snapshot of the day."""
    worlds_gc_interval: float = Field(300.0, gt=0, le=86_400)
    worlds_upload_grace: int = Field(3600, ge=0, le=7 * 86_400)
    """Seconds an uploaded chunk that no snapshot names yet is kept: a save in progress."""
    worlds_s3_bucket: str = ""
    worlds_s3_prefix: str = ""
    worlds_s3_endpoint_url: str | None = None
    """For S3-compatible stores (MinIO, R2, ...); unset for AWS."""
    worlds_s3_region: str | None = None
    worlds_s3_access_key_id: str | None = None
    """Unset: the AWS default chain (environment, shared config, instance role)."""
    worlds_s3_secret_access_key: str | None = None
    worlds_s3_multipart_threshold: int = Field(8 * 1024 * 1024, ge=5 * 1024 * 1024)
    worlds_s3_part_size: int = Field(8 * 1024 * 1024, ge=5 * 1024 * 1024, le=5 * 1024**3)

    dashboard_session_ttl: int = Field(8 * 3600, ge=60, le=7 * 86_400)
    """Seconds an admin dashboard login lasts (`/admin`)."""
    dashboard_secret: str | None = Field(None, min_length=32)
    """Signs dashboard session cookies; unset: a random secret kept beside the signing keys
    (`DATA_DIR/keys`), which every replica must share anyway."""
    dashboard_sample_interval: float = Field(60.0, gt=0, le=3600)
    """Seconds between the samples of servers and players behind the dashboard's charts."""

    http_max_body_bytes: int = Field(65_536, ge=1_024, le=64 * 1024 * 1024)
    http_body_timeout: float = Field(30.0, gt=0, le=3600)
    """Seconds a request's whole body may take to arrive after its headers (then 408)."""
    http_header_timeout: float = Field(30.0, gt=0, le=3600)
    """Seconds a connection may take to send a request's headers, idle ones included."""
    http_backpressure: int = Field(4096, ge=16, le=1_000_000)
    """Connections each worker serves at once; more wait in the listen queue."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Peers whose `X-Forwarded-For` is believed (addresses or CIDR networks)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = _config_file()
        if config is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("fleets")
    @classmethod
    def _fleet_names(cls, value: dict[str, FleetSpec]) -> dict[str, FleetSpec]:
        for name in value:
            if not FLEET_NAME.fullmatch(name):
                raise ValueError(f"fleet name {name!r}: lower-case letters, digits, - and _")
        return value

    @field_validator("matchmaking_queues")
    @classmethod
    def _queue_names(cls, value: dict[str, QueueSpec]) -> dict[str, QueueSpec]:
        for name in value:
            if not QUEUE_NAME.fullmatch(name):
                raise ValueError(f"queue name {name!r}: lower-case letters, digits, - and _")
        return value

    @field_validator("db_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite://") and not value.startswith("sqlite+aiosqlite://"):
            return "sqlite+aiosqlite://" + value.split("://", 1)[1]
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("db_url must be a PostgreSQL or SQLite URL")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if self.password_min_length > self.password_max_length:
            raise ValueError("password_min_length exceeds password_max_length")
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("argon2_memory_kib must be at least 8 times argon2_parallelism")
        if self.worlds_storage == "s3" and not self.worlds_s3_bucket:
            raise ValueError("worlds_storage = s3 needs worlds_s3_bucket")
        return self

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'homeport.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def auto_migrate(self) -> bool:
        return self.is_sqlite if self.db_auto_migrate is None else self.db_auto_migrate

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def fleet_dir(self) -> Path:
        """Logs and stop files of local fleet servers."""
        return self.data_dir / "fleet"

    @property
    def worlds_dir(self) -> Path:
        return self.worlds_path or self.data_dir / "worlds"

    @property
    def url_for_servers(self) -> str:
        if self.fleet_public_url:
            return self.fleet_public_url.rstrip("/")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
