"""Where `homeport serve` keeps its processes' counters."""

from __future__ import annotations

from pathlib import Path

from homeport.observability import multiprocess


def test_counters_live_in_memory_when_the_system_has_a_tmpfs(tmp_path: Path) -> None:
    shm = tmp_path / "shm"
    shm.mkdir()
    first = multiprocess.default_directory(tmp_path / "a", shm)
    assert first.parent == shm
    assert first == multiprocess.default_directory(tmp_path / "a", shm), "stable per data dir"
    assert first != multiprocess.default_directory(tmp_path / "b", shm), "instances differ"


def test_without_a_tmpfs_they_go_in_the_data_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no-shm"
    assert multiprocess.default_directory(tmp_path / "a", missing) == tmp_path / "a" / "metrics"
