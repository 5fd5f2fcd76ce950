"""Server output lands in size-rotated files, nothing lost between rotations."""

from __future__ import annotations

import asyncio
from pathlib import Path

from homeport.fleet.logs import RotatingLog


async def test_output_rotates_at_the_size_and_keeps_the_backups(tmp_path: Path) -> None:
    path = tmp_path / "demo-1.log"
    log = RotatingLog(path, max_bytes=1000, backups=2)
    stream = asyncio.StreamReader()
    lines = [f"line {i:04d} {'x' * 80}\n".encode() for i in range(50)]
    for line in lines:
        stream.feed_data(line)
    stream.feed_eof()
    await log.pump(stream)
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["demo-1.log", "demo-1.log.1", "demo-1.log.2"]
    assert all(f.stat().st_size <= 1000 for f in files)
    kept = b"".join(
        p.read_bytes()
        for p in (path.with_name("demo-1.log.2"), path.with_name("demo-1.log.1"), path)
    )
    assert kept == b"".join(lines)[-len(kept) :], "the newest output, in order"
    assert kept.endswith(lines[-1])


def test_no_backups_means_the_file_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "one.log"
    log = RotatingLog(path, max_bytes=10, backups=0)
    log.write(b"0123456789")
    log.write(b"abc")
    assert path.read_bytes() == b"abc"
    assert list(tmp_path.iterdir()) == [path]
