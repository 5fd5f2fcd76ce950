"""Settings: embedded defaults, HOMEPORT_* variables, homeport.toml, refusal of bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from homeport.settings import Settings


def test_defaults_are_the_embedded_mode(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.data_dir == Path("homeport-data")
    assert settings.is_sqlite
    assert (
        settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'homeport-data' / 'homeport.db'}"
    )
    assert settings.auto_migrate


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEPORT_PORT", "9000")
    monkeypatch.setenv("HOMEPORT_DB_URL", "postgresql://u:p@db:5432/homeport")
    monkeypatch.setenv("HOMEPORT_TRUSTED_PROXIES", '["10.0.0.0/8"]')
    settings = Settings()
    assert settings.port == 9000
    assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/homeport"
    assert not settings.is_sqlite
    assert not settings.auto_migrate
    assert settings.trusted_proxies == ["10.0.0.0/8"]


def test_toml_file_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "homeport.toml").write_text("port = 7000\nauth_access_ttl = 600\n")
    assert Settings().port == 7000
    monkeypatch.setenv("HOMEPORT_PORT", "7001")
    settings = Settings()
    assert settings.port == 7001
    assert settings.auth_access_ttl == 600


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('data_dir = "/srv/homeport"\n')
    monkeypatch.setenv("HOMEPORT_CONFIG", str(config))
    assert Settings().data_dir == Path("/srv/homeport")


@pytest.mark.parametrize(
    "overrides",
    [
        {"db_url": "mysql://x"},
        {"port": 0},
        {"password_min_length": 4},
        {"password_min_length": 64, "password_max_length": 32},
        {"trusted_proxies": ["not-an-ip"]},
        {"unknown_setting": 1},
        {"auth_access_ttl": 5},
    ],
)
def test_bad_values_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**overrides)  # type: ignore[arg-type]


def test_a_config_path_that_is_not_a_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOMEPORT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ValueError, match="not a file"):
        Settings()
