"""The storage contract, on both providers: what the worlds service relies on, whichever the
settings choose. The S3 cases at the end check what only S3 has (multipart uploads, the prefix).
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from homeport.settings import Settings
from homeport.worlds.storage import ChunkStorage, LocalStorage, object_key
from homeport.worlds.storage_s3 import S3Storage
from tests.worlds.conftest import PART
from tests.worlds.s3server import ACCESS_KEY, SECRET_KEY, create_bucket, s3_client

MIB = 1024 * 1024
BIG = 11 * MIB
"""Three parts on S3 (5 + 5 + 1 MiB), so reads can cross two part boundaries."""


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def spool(storage: ChunkStorage, data: bytes, name: str = "upload") -> Path:
    path = storage.spool_dir / name
    path.write_bytes(data)
    return path


async def put(storage: ChunkStorage, data: bytes, world: str = "w1") -> str:
    key = object_key(world, f"{len(data):064x}")
    await storage.store(key, spool(storage, data, key.replace("/", "_")), len(data))
    return key


async def read_all(storage: ChunkStorage, key: str, start: int, end: int) -> bytes:
    return b"".join([block async for block in storage.read(key, start, end)])


async def test_small_object_round_trip(storage: ChunkStorage) -> None:
    data = payload(1000)
    key = await put(storage, data)
    assert await read_all(storage, key, 0, len(data)) == data


async def test_empty_object(storage: ChunkStorage) -> None:
    key = await put(storage, b"")
    assert await storage.exists(key)
    assert [block async for block in storage.read(key, 0, 0)] == []


async def test_large_object_round_trip(storage: ChunkStorage, worlds_settings: Settings) -> None:
    data = payload(BIG, seed=1)
    key = await put(storage, data)
    assert await read_all(storage, key, 0, BIG) == data
    if storage.name == "s3":
        head = await _head(worlds_settings, key)
        assert head["ContentLength"] == BIG
        # A multipart object's ETag is "<md5 of the part md5s>-<part count>"; a single PUT's
        # has no suffix.
        assert head["ETag"].strip('"').endswith("-3"), head["ETag"]
    else:
        assert (worlds_settings.worlds_dir / key).stat().st_size == BIG


async def test_object_below_threshold_is_one_put(
    storage: ChunkStorage, worlds_settings: Settings
) -> None:
    data = payload(PART - 1, seed=2)
    key = await put(storage, data)
    assert await read_all(storage, key, 0, len(data)) == data
    if storage.name == "s3":
        head = await _head(worlds_settings, key)
        assert "-" not in head["ETag"], head["ETag"]


async def test_reads_in_blocks(storage: ChunkStorage) -> None:
    data = payload(3 * MIB, seed=3)
    key = await put(storage, data)
    blocks = [block async for block in storage.read(key, 0, len(data))]
    assert len(blocks) > 1  # streamed, not one buffer of the whole object
    assert b"".join(blocks) == data


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, 1),
        (1, 2),
        (12345, 678901),
        (PART - 10, PART + 10),  # across the first part boundary
        (PART - 1, PART),  # the last byte of part 1
        (PART, PART + 1),  # the first byte of part 2
        (2 * PART - 1, 2 * PART + 1),  # across the second boundary
        (3, BIG - 3),  # all three parts, without either end
        (BIG - 1, BIG),
        (PART, PART),  # nothing
    ],
)
async def test_ranged_reads(storage: ChunkStorage, start: int, end: int) -> None:
    data = payload(BIG, seed=4)
    key = await put(storage, data)
    assert await read_all(storage, key, start, end) == data[start:end]


async def test_store_consumes_the_spool_file(storage: ChunkStorage) -> None:
    for size in (10, BIG):
        path = spool(storage, payload(size), f"spool-{size}")
        key = object_key("w1", f"{size:064x}")
        await storage.store(key, path, size)
        assert not path.exists()
        assert await storage.exists(key)


async def test_exists(storage: ChunkStorage) -> None:
    key = object_key("w1", "ab" * 32)
    assert not await storage.exists(key)
    await storage.store(key, spool(storage, b"chunk"), 5)
    assert await storage.exists(key)
    assert not await storage.exists(object_key("w1", "ab" * 32))  # same hash, other upload
    await storage.delete([key])
    assert not await storage.exists(key)


async def test_delete_existing_and_missing_keys(storage: ChunkStorage) -> None:
    kept = await put(storage, b"kept", world="w2")
    first = await put(storage, b"first")
    second = await put(storage, payload(BIG, seed=5))
    missing = object_key("w1", "cd" * 32)
    await storage.delete([first, missing, second])
    assert not await storage.exists(first)
    assert not await storage.exists(second)
    assert await storage.exists(kept)
    await storage.delete([first, missing])  # again: already gone is not an error
    await storage.delete([])
    assert await read_all(storage, kept, 0, 4) == b"kept"


async def test_delete_many_keys(storage: ChunkStorage) -> None:
    """More keys than one S3 request may name; the real ones sit in the last batch."""
    real = [await put(storage, f"object {i}".encode()) for i in range(3)]
    missing = [object_key("w1", f"{i:064x}") for i in range(2100)]
    await storage.delete(missing + real)
    for key in real:
        assert not await storage.exists(key)


async def test_concurrent_stores(storage: ChunkStorage) -> None:
    sizes = [0, 1, 4096, 100_000, PART - 1, PART, PART + 1, BIG]
    contents = [payload(size, seed=10 + i) for i, size in enumerate(sizes)]
    keys = await asyncio.gather(
        *(put(storage, data, world=f"w{i}") for i, data in enumerate(contents))
    )
    assert len(set(keys)) == len(keys)
    reads = await asyncio.gather(
        *(read_all(storage, key, 0, len(data)) for key, data in zip(keys, contents, strict=True))
    )
    assert reads == contents
    assert list(storage.spool_dir.iterdir()) == []


async def test_reading_a_missing_key_fails(storage: ChunkStorage) -> None:
    with pytest.raises(FileNotFoundError):
        await read_all(storage, object_key("w1", "ef" * 32), 0, 10)


async def test_reading_past_the_end_fails(storage: ChunkStorage) -> None:
    key = await put(storage, payload(100))
    with pytest.raises(OSError, match=r"early|shorter|range"):
        await read_all(storage, key, 50, 101)
    with pytest.raises(OSError, match=r"early|shorter|range"):
        await read_all(storage, key, 200, 300)


async def test_open_storage_chooses_the_provider(
    storage: ChunkStorage, worlds_settings: Settings
) -> None:
    expected = S3Storage if worlds_settings.worlds_storage == "s3" else LocalStorage
    assert type(storage) is expected
    assert storage.name == worlds_settings.worlds_storage
    assert storage.spool_dir.is_dir()


# --- S3 only ---------------------------------------------------------------------------------


async def _head(settings: Settings, key: str) -> dict[str, Any]:
    assert settings.worlds_s3_endpoint_url is not None
    async with s3_client(settings.worlds_s3_endpoint_url) as client:
        head: dict[str, Any] = await client.head_object(Bucket=settings.worlds_s3_bucket, Key=key)
        return head


@pytest.fixture
async def s3_bucket(s3_endpoint: str) -> str:
    bucket = f"worlds-{random.getrandbits(64):016x}"
    await create_bucket(s3_endpoint, bucket)
    return bucket


def s3_storage(endpoint: str, bucket: str, spool_dir: Path, prefix: str = "") -> S3Storage:
    return S3Storage(
        bucket=bucket,
        spool_dir=spool_dir,
        endpoint_url=endpoint,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        multipart_threshold=PART,
        part_size=PART,
        prefix=prefix,
    )


@pytest.mark.parametrize("prefix", ["games/", "/games", "games"])
async def test_s3_prefix(s3_endpoint: str, s3_bucket: str, tmp_path: Path, prefix: str) -> None:
    storage = s3_storage(s3_endpoint, s3_bucket, tmp_path / "spool", prefix=prefix)
    await storage.start()
    try:
        key = await put(storage, b"prefixed")
        async with s3_client(s3_endpoint) as client:
            listed = await client.list_objects_v2(Bucket=s3_bucket)
        assert [o["Key"] for o in listed["Contents"]] == [f"games/{key}"]
        assert await storage.exists(key)
        assert await read_all(storage, key, 0, 8) == b"prefixed"
        await storage.delete([key])
        assert not await storage.exists(key)
    finally:
        await storage.close()


async def test_s3_failed_multipart_upload_is_aborted(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    """The spool file is shorter than the size given: the first part uploads, reading the
    second fails, and nothing of the upload may remain."""
    storage = s3_storage(s3_endpoint, s3_bucket, tmp_path / "spool")
    await storage.start()
    try:
        path = spool(storage, payload(PART + 100))
        key = object_key("w1", "12" * 32)
        with pytest.raises(OSError, match="spool file"):
            await storage.store(key, path, BIG)
        assert path.exists()  # left for the caller, as the contract says
        assert not await storage.exists(key)
        async with s3_client(s3_endpoint) as client:
            uploads = await client.list_multipart_uploads(Bucket=s3_bucket)
        assert uploads.get("Uploads", []) == []
    finally:
        await storage.close()


async def test_s3_missing_bucket_fails(s3_endpoint: str, tmp_path: Path) -> None:
    storage = s3_storage(s3_endpoint, "no-such-bucket", tmp_path / "spool")
    await storage.start()
    try:
        path = spool(storage, b"data")
        with pytest.raises(Exception, match="NoSuchBucket"):
            await storage.store(object_key("w1", "34" * 32), path, 4)
        assert path.exists()
    finally:
        await storage.close()


async def test_s3_used_before_start_fails(tmp_path: Path) -> None:
    storage = S3Storage(bucket="b", spool_dir=tmp_path)
    with pytest.raises(RuntimeError, match="before start"):
        await storage.exists("k")


def test_s3_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        worlds_storage="s3",
        worlds_s3_bucket="b",
        worlds_s3_prefix="/a/b/",
        worlds_s3_multipart_threshold=6 * MIB,
        worlds_s3_part_size=7 * MIB,
    )
    storage = S3Storage.from_settings(settings)
    assert (storage.bucket, storage.prefix, storage.region) == ("b", "a/b/", "us-east-1")
    assert storage.spool_dir == tmp_path / "worlds-spool"
    assert (storage.multipart_threshold, storage.part_size) == (6 * MIB, 7 * MIB)
