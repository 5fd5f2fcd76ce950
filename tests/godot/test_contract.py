"""The addon's request table (`godot/addons/homeport/contract.json`) against both sides: the
GDScript makes no request that is not in it and uses every row, and every row matches Homeport's
routes and schemas and works when sent to a live Homeport. A renamed path, method or field
fails here, before a game meets it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import WebSocketRoute

from homeport.app import create_app
from homeport.matchmaking.realtime import router as realtime_router
from homeport.settings import Settings
from tests.godot.engine import ADDON, DEMO, PROJECT, REPO

CONTRACT = json.loads((ADDON / "contract.json").read_text())
TABLE: dict[str, dict[str, Any]] = CONTRACT["operations"]
AGONES: dict[str, dict[str, Any]] = CONTRACT["agones"]
# Agones' published SDK API, kept beside the repository (../shared/agones) or where
# HOMEPORT_AGONES_REFERENCE points.
SDK_SPEC = (
    Path(os.environ.get("HOMEPORT_AGONES_REFERENCE", REPO.parent / "shared" / "agones"))
    / "sdk.swagger.json"
)
SCRIPTS = [
    *sorted(ADDON.glob("*.gd")),
    *sorted(p for p in DEMO.rglob("*.gd") if "addons" not in p.parts),
    *sorted(PROJECT.rglob("*.gd")),
]
# The ways a script names a row: HomeportHttp.request/prepare/stream, the client's
# `authorized`, the world's `_call`, and a queued save's "operation".
NAMED = re.compile(
    r'\b(?:request|prepare|stream|authorized|_call)\(\s*"([^"]*)"|"operation": "([^"]*)"'
)
LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')


def code_of(script: Path) -> str:
    """The script without its comments (doc comments may name paths)."""
    return "\n".join(line.split("#", 1)[0] for line in script.read_text().splitlines())


def named_rows(scripts: list[Path]) -> set[str]:
    found: set[str] = set()
    for script in scripts:
        for match in NAMED.finditer(code_of(script)):
            found.add(match.group(1) or match.group(2))
    return found


def test_the_table_is_well_formed() -> None:
    assert set(CONTRACT) == {"about", "operations", "agones"}
    for name, row in {**TABLE, **AGONES}.items():
        assert row["method"] in {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}, name
        assert row["path"].startswith("/v1/" if name in TABLE else "/"), name
        fields = {"method", "path", "headers", "body", "query", "answer", "websocket", "stream"}
        assert set(row) <= fields, name
        body = row.get("body")
        assert body is None or body == "bytes" or set(body.values()) <= {"required", "optional"}
        assert ("Content-Type" in row["headers"]) == (body is not None), name
        for value in row["headers"].values():
            assert value in {
                "application/json",
                "application/octet-stream",
                "Bearer {access_token}",
                "Bearer {server_key}",
            }, (name, value)


def test_the_scripts_make_only_requests_of_the_table() -> None:
    for script in SCRIPTS:
        code = code_of(script)
        for literal in LITERAL.findall(code):
            assert "/v1" not in literal, (script.name, literal)
            if PROJECT not in script.parents:  # the runner checks built headers
                assert "Bearer" not in literal, (script.name, literal)
        if script.name != "homeport_http.gd":
            assert "HTTPRequest.new" not in code, script.name
            assert "HTTPClient.new" not in code, script.name
    used = named_rows(SCRIPTS)
    assert used - set(TABLE) - set(AGONES) - {"auth.telepathy"} == set(), "rows not in the table"
    addon_uses = named_rows(sorted(ADDON.glob("*.gd")))
    assert (set(TABLE) | set(AGONES)) - addon_uses == set(), "rows the addon never makes"


def openapi_match(spec: dict[str, Any], path: str) -> tuple[str, dict[str, Any]]:
    """The OpenAPI path a row's path names: literal segments may fill a parameter (`me`), the
    row's parameters must have the route's names."""
    wanted = path.split("/")
    for template, operations in spec["paths"].items():
        parts = template.split("/")
        if len(parts) != len(wanted):
            continue
        if all(
            a == b or (b.startswith("{") and not a.startswith("{"))
            for a, b in zip(wanted, parts, strict=True)
        ):
            return template, operations
    raise AssertionError(f"no route for {path}")


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema or "anyOf" in schema:
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        else:
            schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    return schema


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("contract")))
    return app.openapi()


@pytest.mark.parametrize("name", sorted(TABLE))
def test_every_row_matches_a_route_and_its_schema(name: str, openapi: dict[str, Any]) -> None:
    spec = openapi
    row = TABLE[name]
    if row.get("websocket"):
        paths = [r.path for r in realtime_router.routes if isinstance(r, WebSocketRoute)]
        assert row["path"] in paths, f"{name}: no WebSocket at {row['path']}"
        return
    template, operations = openapi_match(spec, row["path"])
    operation = operations.get(row["method"].lower())
    assert operation is not None, f"{name}: {template} has no {row['method']}"
    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    assert set(row.get("query", [])) <= declared, f"{name}: query {declared}"
    path_names = set(re.findall(r"{(\w+)}", row["path"]))
    assert path_names <= set(re.findall(r"{(\w+)}", template)), f"{name}: {template}"
    content = operation.get("requestBody", {}).get("content", {})
    body = row.get("body")
    if body is None:
        assert not operation.get("requestBody", {}).get("required"), f"{name} needs a body"
    elif body == "bytes":
        assert "application/octet-stream" in content, name
    else:
        schema = resolve(spec, content["application/json"]["schema"])
        assert set(body) <= set(schema["properties"]), f"{name}: fields {set(schema['properties'])}"
        required = {field for field, kind in body.items() if kind == "required"}
        assert set(schema.get("required", [])) <= required, f"{name}: required fields"


@pytest.mark.skipif(not SDK_SPEC.exists(), reason="the Agones SDK reference is not at hand")
@pytest.mark.parametrize("name", sorted(AGONES))
def test_every_agones_row_is_in_the_sdk(name: str) -> None:
    """Against the sidecar's published REST API (grpc-gateway's swagger of the SDK)."""
    spec = json.loads(SDK_SPEC.read_text())
    row = AGONES[name]
    operation = spec["paths"].get(row["path"], {}).get(row["method"].lower())
    assert operation is not None, f"{name}: the SDK has no {row['method']} {row['path']}"
    bodies = [p for p in operation.get("parameters", []) if p["in"] == "body"]
    if row.get("body") is None:
        assert not bodies, f"{name} needs a body"
        return
    schema = spec["definitions"][bodies[0]["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert set(row["body"]) <= set(schema.get("properties", {})), name
    streaming = "streaming responses" in operation["responses"]["200"]["description"]
    assert streaming == bool(row.get("stream")), name
