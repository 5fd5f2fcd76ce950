"""Fixtures for the worlds tests."""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Storage: every test that takes `worlds_settings` or `storage` runs twice, on the local
# directory and on S3 (a real moto server over HTTP, one per test session, a new bucket per test).
# ---------------------------------------------------------------------------------------------
import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from homeport.settings import Settings
from homeport.worlds.storage import ChunkStorage, open_storage
from tests.conftest import FAST_HASHING
from tests.worlds.s3server import ACCESS_KEY, SECRET_KEY, create_bucket, moto_server

PART = 5 * 1024 * 1024
"""The smallest part S3 allows, as threshold and part size, so a test needs little data to
make an upload multipart."""


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_server(log) as url:
        yield url


@pytest.fixture(params=["local", "s3"])
def worlds_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for each kind of storage; on S3 with a new, empty bucket."""
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "worlds_storage": request.param,
        "worlds_s3_multipart_threshold": PART,
        "worlds_s3_part_size": PART,
        **FAST_HASHING,
    }
    if request.param == "s3":
        endpoint: str = request.getfixturevalue("s3_endpoint")
        bucket = f"worlds-{uuid.uuid4().hex}"
        asyncio.run(create_bucket(endpoint, bucket))
        values.update(
            worlds_s3_bucket=bucket,
            worlds_s3_endpoint_url=endpoint,
            worlds_s3_access_key_id=ACCESS_KEY,
            worlds_s3_secret_access_key=SECRET_KEY,
        )
    return Settings(**values)


@pytest.fixture
async def storage(worlds_settings: Settings) -> AsyncIterator[ChunkStorage]:
    """The started storage `worlds_settings` chooses, closed after the test."""
    opened = open_storage(worlds_settings)
    await opened.start()
    try:
        yield opened
    finally:
        await opened.close()


# ---------------------------------------------------------------------------------------------
# (end of the storage block)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def settings(make_settings: Any, worlds_settings: Settings) -> Settings:
    """The app of every worlds API test: each database with each storage."""
    chosen = {
        name: getattr(worlds_settings, name)
        for name in Settings.model_fields
        if name.startswith("worlds_s3_") or name == "worlds_storage"
    }
    result: Settings = make_settings(**chosen)
    return result
