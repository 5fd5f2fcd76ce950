"""Chunks as objects in an S3-compatible bucket: AWS, or MinIO, R2, Ceph and the like by
`worlds_s3_endpoint_url`.

aiobotocore is an optional dependency (the `s3` extra), so only `open_storage` imports this
module, and only when the settings choose S3. Uploads still arrive in a local spool directory:
the service checks a chunk's hash there before it becomes an object, and an object is then
written whole (one PUT, or a multipart upload that is only visible once completed), so a reader
never sees part of a chunk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import ClientError

from homeport.settings import Settings
from homeport.worlds.storage import READ_BLOCK, ChunkStorage

log = logging.getLogger("homeport.worlds")

DELETE_BATCH = 1000
"""The most keys one DeleteObjects request may name."""
MAX_PARTS = 10_000
"""The most parts one multipart upload may have."""
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class S3Storage(ChunkStorage):
    """One bucket (under an optional key prefix), through one client that lives from `start` to
    `close`, so requests share its connection pool instead of each paying for a new one."""

    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        spool_dir: Path,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        multipart_threshold: int = 8 * 1024 * 1024,
        part_size: int = 8 * 1024 * 1024,
    ) -> None:
        if not bucket:
            raise ValueError("S3 storage needs a bucket")
        self.bucket = bucket
        # Both ends stripped: a leading "/" would make keys that path-style URLs mangle ("//").
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint_url = endpoint_url or None
        self.region = region or "us-east-1"
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self._spool = spool_dir
        self._stack: AsyncExitStack | None = None
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        return cls(
            bucket=settings.worlds_s3_bucket,
            spool_dir=settings.data_dir / "worlds-spool",
            prefix=settings.worlds_s3_prefix,
            endpoint_url=settings.worlds_s3_endpoint_url,
            region=settings.worlds_s3_region,
            access_key_id=settings.worlds_s3_access_key_id,
            secret_access_key=settings.worlds_s3_secret_access_key,
            multipart_threshold=settings.worlds_s3_multipart_threshold,
            part_size=settings.worlds_s3_part_size,
        )

    @property
    def spool_dir(self) -> Path:
        return self._spool

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("S3Storage used before start() or after close()")
        return self._client

    async def start(self) -> None:
        await asyncio.to_thread(self._spool.mkdir, parents=True, exist_ok=True)
        session = get_session()
        # Creating a client reads ~/.aws/config and botocore's service model from disk; doing
        # that here, in a thread, leaves create_client nothing to block the event loop with.
        await asyncio.to_thread(_load_from_disk, session)
        credentials: dict[str, str] = {}
        if self._access_key_id and self._secret_access_key:
            # Only a complete pair; otherwise the AWS default chain (environment, instance role).
            credentials = {
                "aws_access_key_id": self._access_key_id,
                "aws_secret_access_key": self._secret_access_key,
            }
        config = AioConfig(
            # Virtual-host addressing needs a DNS name per bucket, which MinIO, moto and most
            # self-hosted endpoints do not have; path style works everywhere.
            s3={"addressing_style": "path"},
            # botocore's default CRC32 checksums on every request are not understood by every
            # S3-compatible store; send them only where the API requires one (DeleteObjects).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        stack = AsyncExitStack()
        try:
            self._client = await stack.enter_async_context(
                session.create_client(
                    "s3",
                    region_name=self.region,
                    endpoint_url=self.endpoint_url,
                    config=config,
                    **credentials,
                )
            )
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def store(self, key: str, spool: Path, size: int) -> None:
        target = self._key(key)
        if size < self.multipart_threshold:
            body = await asyncio.to_thread(_read_exact, spool, 0, size)
            await self.client.put_object(
                Bucket=self.bucket, Key=target, Body=body, ContentLength=size
            )
        else:
            await self._store_multipart(target, spool, size)
        # missing_ok: the object is stored; a vanished spool file must not report a failure.
        await asyncio.to_thread(spool.unlink, missing_ok=True)

    async def _store_multipart(self, target: str, spool: Path, size: int) -> None:
        """Parts go one at a time, so a chunk holds at most one part in memory however large it
        is; the object appears only when the upload completes."""
        client = self.client
        created = await client.create_multipart_upload(Bucket=self.bucket, Key=target)
        upload_id: str = created["UploadId"]
        try:
            part_size = max(self.part_size, -(-size // MAX_PARTS))
            parts: list[dict[str, Any]] = []
            for number, offset in enumerate(range(0, size, part_size), start=1):
                length = min(part_size, size - offset)
                body = await asyncio.to_thread(_read_exact, spool, offset, length)
                answer = await client.upload_part(
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ContentLength=length,
                )
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
            await client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=target,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # Cancellation included: an upload left open keeps its parts, billed, forever.
            await self._abort(target, upload_id)
            raise

    async def _abort(self, target: str, upload_id: str) -> None:
        """Never raises: the error that made the upload fail is the one the caller must see."""
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=target, UploadId=upload_id
            )
        except Exception:
            log.warning(
                "could not abort multipart upload %s of %s; a bucket lifecycle rule for "
                "incomplete multipart uploads will remove its parts",
                upload_id,
                target,
                exc_info=True,
            )

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        if start >= end:
            return
        wanted = f"bytes {start}-{end - 1}/"
        try:
            answer = await self.client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{end - 1}"
            )
        except ClientError as error:
            mapped = _read_error(key, end, error)
            if mapped is None:
                raise
            raise mapped from error
        body = answer["Body"]
        try:
            # A server that ignored the range, or an object shorter than `end`, would otherwise
            # hand the caller bytes from the wrong place.
            if not str(answer.get("ContentRange", "")).startswith(wanted):
                got = answer.get("ContentRange")
                raise OSError(f"object {key}: asked for {wanted}..., got range {got!r}")
            left = end - start
            async for block in body.iter_chunks(READ_BLOCK):
                if len(block) > left:
                    raise OSError(f"object {key} sent more than the {end - start} bytes asked")
                left -= len(block)
                yield block
            if left:
                raise OSError(f"object {key} ended {left} bytes early")
        finally:
            body.close()

    async def delete(self, keys: Sequence[str]) -> None:
        for first in range(0, len(keys), DELETE_BATCH):
            batch = keys[first : first + DELETE_BATCH]
            answer = await self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self._key(k)} for k in batch], "Quiet": True},
            )
            # DeleteObjects answers 200 even when it deleted nothing; failures are only listed.
            errors = answer.get("Errors") or []
            if errors:
                first_error = errors[0]
                raise OSError(
                    f"S3 did not delete {len(errors)} of {len(batch)} objects, e.g. "
                    f"{first_error.get('Key')}: {first_error.get('Code')} "
                    f"{first_error.get('Message')}"
                )

    async def exists(self, key: str) -> bool:
        try:
            await self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if _error_code(error) in _MISSING:
                return False
            raise
        return True


def _load_from_disk(session: AioSession) -> None:
    session.get_scoped_config()
    session.warm_up_loader_caches("s3")


def _read_exact(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    if len(data) != length:
        raise OSError(f"spool file {path} has {offset + len(data)} bytes, not {offset + length}")
    return data


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _read_error(key: str, end: int, error: ClientError) -> OSError | None:
    """The errors `LocalStorage` raises for the same cases, so callers need not know which
    storage they have: FileNotFoundError for a missing object, OSError for one too short."""
    code = _error_code(error)
    if code in _MISSING:
        return FileNotFoundError(f"object {key} does not exist")
    if code == "InvalidRange":
        return OSError(f"object {key} is shorter than {end} bytes")
    return None
