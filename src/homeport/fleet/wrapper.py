"""Where the SIGTERM wrapper for game servers is installed (see the script's header)."""

from __future__ import annotations

from pathlib import Path


def wrapper_path() -> Path:
    """The packaged `wrapper.sh`: the fleet runs `sh <it> <command> [args...]`."""
    return Path(__file__).with_name("wrapper.sh")
