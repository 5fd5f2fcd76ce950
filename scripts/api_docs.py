"""Write docs/api.md from the app's OpenAPI document: `python scripts/api_docs.py > docs/api.md`.

tests/test_api_docs.py fails when the file and the API disagree, so the reference never drifts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from homeport.app import create_app
from homeport.settings import Settings

HEADER = """# HTTP API

Generated from the OpenAPI document (`/openapi.json` on a running server, browsable at `/docs`)
by `python scripts/api_docs.py > docs/api.md`. Every error is `application/problem+json`
(RFC 9457) with a stable `type` of the form `urn:homeport:problem:<slug>`; the slugs each
endpoint can return are listed under it.
"""


def _auth(operation: dict[str, Any], path: str) -> str:
    if path.startswith("/v1/admin/"):
        return "admin key (`hp_admin_…`)"
    for requirement in operation.get("security") or []:
        scopes = ", ".join(f"`{scope}`" for scope in requirement.get("ServerKey", []))
        return f"server key (`hp_sk_…`) with scope {scopes}" if scopes else "server key (`hp_sk_…`)"
    responses = operation.get("responses", {})
    described = " ".join(str(r.get("description", "")) for r in responses.values())
    if "token-missing" in described:
        return "player access token"
    return "none"


def render(schema: dict[str, Any]) -> str:
    lines = [HEADER]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            lines.append(f"## `{method.upper()} {path}`\n")
            description = operation.get("description") or operation.get("summary", "")
            if description:
                lines.append(" ".join(description.split()) + "\n")
            lines.append(f"- Authentication: {_auth(operation, path)}")
            for status, response in sorted(operation.get("responses", {}).items()):
                text = " ".join(str(response.get("description", "")).split())
                lines.append(f"- `{status}`: {text}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(Settings(data_dir=Path(data_dir)))
        print(render(app.openapi()), end="")


if __name__ == "__main__":
    main()
