"""A real S3 endpoint for tests: moto's server in a subprocess on loopback, so the S3 storage is
tested over HTTP with the same client code it uses in production, not against a mock in-process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from tests.e2e.live import free_port

ACCESS_KEY = "test"
SECRET_KEY = "test"
REGION = "us-east-1"


@contextmanager
def moto_server(log: Path, timeout: float = 30) -> Iterator[str]:
    """Run `python -m moto.server` until the block ends; yields its endpoint URL. Its output
    goes to `log` (a pipe nobody reads would fill up and stall the server)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(process, url, log, timeout)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"moto server exited ({process.returncode}):\n{log.read_text()}")
        try:
            httpx.get(url, timeout=1)  # any answer at all means it is serving
        except httpx.TransportError:
            time.sleep(0.1)
        else:
            return
    raise AssertionError(f"moto server did not answer within {timeout} s:\n{log.read_text()}")


@asynccontextmanager
async def s3_client(endpoint: str) -> AsyncIterator[Any]:
    """A client of its own, for setting up buckets and for looking at what the storage wrote
    without going through the storage."""
    config = AioConfig(s3={"addressing_style": "path"})
    async with get_session().create_client(
        "s3",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=config,
    ) as client:
        yield client


async def create_bucket(endpoint: str, bucket: str) -> None:
    async with s3_client(endpoint) as client:
        await client.create_bucket(Bucket=bucket)
