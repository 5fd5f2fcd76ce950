"""docs/api.md is generated from the OpenAPI document and must match the API."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI

ROOT = Path(__file__).resolve().parent.parent


def _renderer() -> object:
    spec = importlib.util.spec_from_file_location("api_docs", ROOT / "scripts" / "api_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_current(app: FastAPI) -> None:
    render = _renderer().render  # type: ignore[attr-defined]
    expected = render(app.openapi())
    actual = (ROOT / "docs" / "api.md").read_text()
    assert actual == expected, "docs/api.md is stale: python scripts/api_docs.py > docs/api.md"
