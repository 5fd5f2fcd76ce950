"""A stand-in Kubernetes API server with Agones installed, on loopback: just the calls Homeport
makes (GameServerAllocation create, GameServer list, Fleet get, patch and scale), with the
real paths, JSON shapes and `Status` errors (401, 403, 404, 415, 422). Requests are checked
against Agones' CRD schemas where there is one; an allocation takes one lock, so like Agones
it never hands a GameServer out twice. Homeport reaches it through a kubeconfig file with a
bearer token, which it checks, so the client's configuration and auth path are the real ones.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.fleet.agones import wire

NS = r"/namespaces/(?P<ns>[a-z0-9-]+)"
ROUTES = [
    ("POST", re.compile(rf"^/apis/allocation\.agones\.dev/v1{NS}/gameserverallocations$"), "gsa"),
    ("GET", re.compile(rf"^/apis/agones\.dev/v1{NS}/gameservers$"), "list_gs"),
    ("GET", re.compile(rf"^/apis/agones\.dev/v1{NS}/fleets/(?P<name>[^/]+)$"), "get_fleet"),
    ("PATCH", re.compile(rf"^/apis/agones\.dev/v1{NS}/fleets/(?P<name>[^/]+)$"), "patch_fleet"),
    ("GET", re.compile(rf"^/apis/agones\.dev/v1{NS}/fleets/(?P<name>[^/]+)/scale$"), "get_scale"),
    ("PATCH", re.compile(rf"^/apis/agones\.dev/v1{NS}/fleets/(?P<name>[^/]+)/scale$"), "scale"),
]
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    content_type: str


class Reply(Exception):
    def __init__(self, code: int, document: dict[str, Any]) -> None:
        self.code, self.document = code, document


TOKEN = "fake-cluster-token"


class FakeKube:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.schemas = wire.crd_schemas()
        self.calls: list[Call] = []
        self.game_servers: dict[tuple[str, str], dict[str, Any]] = {}
        self.fleets: dict[tuple[str, str], dict[str, Any]] = {}
        self.forbidden: set[str] = set()
        """Route names the service account may not use: answered 403 like RBAC does."""
        self.uninstalled: set[str] = set()
        """Route names answered 404 as when Agones' API is not installed."""
        self.garbled: set[str] = set()
        """Route names answered by something in front of the API server: a 502 HTML page."""
        self.contention = 0
        """The next this many allocations answer Contention, as Agones' cache does in races."""
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeKube:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def kubeconfig(
        self, path: Path, *, token: str | None = None, server: str | None = None
    ) -> Path:
        """A kubeconfig file that reaches this server with a bearer token."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": server or self.url}}],
            "users": [{"name": "homeport", "user": {"token": token or self.token}}],
            "contexts": [
                {"name": "fake", "context": {"cluster": "fake", "user": "homeport"}},
            ],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def _valid(self, kind: str, document: dict[str, Any]) -> None:
        schema = (self.schemas or {}).get(kind)
        found = [] if schema is None else wire.problems(schema, document)
        if found:
            raise AssertionError(f"{kind} breaks Agones' CRD schema: {found[:3]}")

    def add_fleet(self, name: str, *, namespace: str = "default", replicas: int = 0) -> None:
        document = wire.fleet(name, namespace, replicas)
        self._valid("Fleet", document)
        with self.lock:
            self.fleets[(namespace, name)] = document

    def add_game_server(
        self,
        fleet: str,
        *,
        name: str | None = None,
        namespace: str = "default",
        state: str = "Ready",
        **fields: Any,
    ) -> dict[str, Any]:
        with self.lock:
            number = len(self.game_servers)
            name = name or f"{fleet}-{number:05d}"
            document = wire.game_server(
                name,
                namespace,
                fleet,
                state=state,
                port=fields.pop("port", 7000 + number),
                **fields,
            )
            self._valid("GameServer", document)
            self.game_servers[(namespace, name)] = document
            return copy.deepcopy(document)

    def states(self) -> dict[str, str]:
        with self.lock:
            return {n: gs["status"]["state"] for (_, n), gs in self.game_servers.items()}

    def of(self, route: str) -> list[Call]:
        return [c for c in self.calls if _route(c.method, c.path)[0] == route]

    # --- the API ----------------------------------------------------------------------------

    def serve(self, call: Call, authorization: str | None) -> tuple[int, dict[str, Any]]:
        if authorization != f"Bearer {self.token}":
            return 401, wire.status(401, "Unauthorized", "Unauthorized")
        route, params = _route(call.method, call.path)
        if route is None or route in self.uninstalled:
            return 404, wire.status(
                404, "NotFound", "the server could not find the requested resource"
            )
        if route in self.forbidden:
            return 403, wire.status(
                403,
                "Forbidden",
                f'User "system:serviceaccount:homeport:homeport" cannot {call.method.lower()} '
                f'this resource in the namespace "{params["ns"]}"',
            )
        try:
            with self.lock:
                handled: tuple[int, dict[str, Any]] = getattr(self, f"_{route}")(call, **params)
                return handled
        except Reply as reply:
            return reply.code, reply.document

    def _fleet(self, ns: str, name: str) -> dict[str, Any]:
        found = self.fleets.get((ns, name))
        if found is None:
            raise Reply(
                404,
                wire.status(
                    404,
                    "NotFound",
                    f'fleets.agones.dev "{name}" not found',
                    name=name,
                    group="agones.dev",
                    kind="fleets",
                ),
            )
        return found

    def _gsa(self, call: Call, ns: str) -> tuple[int, dict[str, Any]]:
        body = call.body
        found = (
            wire.problems(wire.GAME_SERVER_ALLOCATION, body)
            if isinstance(body, dict)
            else [("", "not an object")]
        )
        if found:
            causes = [{"reason": "FieldValueInvalid", "field": f, "message": m} for f, m in found]
            raise Reply(
                422,
                wire.status(
                    422,
                    "Invalid",
                    f'GameServerAllocation.allocation.agones.dev "" is invalid: {found[0][1]}',
                    kind="GameServerAllocation",
                    group="allocation.agones.dev",
                    causes=causes,
                ),
            )
        spec = body["spec"]
        answer = {
            "apiVersion": "allocation.agones.dev/v1",
            "kind": "GameServerAllocation",
            "metadata": {"namespace": ns, "creationTimestamp": wire.now()},
            "spec": spec,
            "status": {"state": "UnAllocated", "gameServerName": "", "source": "local"},
        }
        if self.contention > 0:
            self.contention -= 1
            answer["status"]["state"] = "Contention"
            return 201, answer
        chosen = self._choose(ns, spec.get("selectors") or [spec.get("required") or {}])
        if chosen is None:
            return 201, answer
        meta, status = chosen["metadata"], chosen["status"]
        wanted = spec.get("metadata") or {}
        meta["labels"].update(wanted.get("labels") or {})
        meta.setdefault("annotations", {}).update(wanted.get("annotations") or {})
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        status["state"] = "Allocated"
        self._valid("GameServer", chosen)
        answer["metadata"]["name"] = meta["name"]
        answer["status"] = {
            "state": "Allocated",
            "gameServerName": meta["name"],
            "ports": copy.deepcopy(status["ports"]),
            "address": status["address"],
            "addresses": copy.deepcopy(status["addresses"]),
            "nodeName": status["nodeName"],
            "source": "local",
            "metadata": {"labels": dict(meta["labels"]), "annotations": dict(meta["annotations"])},
        }
        return 201, answer

    def _choose(self, ns: str, selectors: list[dict[str, Any]]) -> dict[str, Any] | None:
        for selector in selectors:
            wanted = selector.get("matchLabels") or {}
            state = selector.get("gameServerState") or "Ready"
            for (gs_ns, _), gs in sorted(self.game_servers.items()):
                labels = gs["metadata"].get("labels") or {}
                if (
                    gs_ns == ns
                    and gs["status"]["state"] == state
                    and all(labels.get(k) == v for k, v in wanted.items())
                ):
                    return gs
        return None

    def _list_gs(self, call: Call, ns: str) -> tuple[int, dict[str, Any]]:
        selector = (call.query.get("labelSelector") or [""])[0]
        items = [
            copy.deepcopy(gs)
            for (gs_ns, _), gs in sorted(self.game_servers.items())
            if gs_ns == ns and wire.selected(gs["metadata"].get("labels") or {}, selector)
        ]
        return 200, {
            "apiVersion": "agones.dev/v1",
            "kind": "GameServerList",
            "metadata": {"resourceVersion": str(len(self.calls))},
            "items": items,
        }

    def _get_fleet(self, call: Call, ns: str, name: str) -> tuple[int, dict[str, Any]]:
        return 200, copy.deepcopy(self._fleet(ns, name))

    def _patch_fleet(self, call: Call, ns: str, name: str) -> tuple[int, dict[str, Any]]:
        current = self._fleet(ns, name)
        patched = wire.merge(current, self._merge_patch(call))
        self._check_or_422("Fleet", name, patched)
        self._bump(patched)
        self.fleets[(ns, name)] = patched
        return 200, copy.deepcopy(patched)

    def _get_scale(self, call: Call, ns: str, name: str) -> tuple[int, dict[str, Any]]:
        return 200, self._scale_of(self._fleet(ns, name))

    def _scale(self, call: Call, ns: str, name: str) -> tuple[int, dict[str, Any]]:
        current = self._fleet(ns, name)
        patch = self._merge_patch(call)
        replicas = (patch.get("spec") or {}).get("replicas")
        if set(patch) - {"spec", "metadata"} or not isinstance(replicas, int) or replicas < 0:
            raise Reply(
                422,
                wire.status(
                    422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas'
                ),
            )
        patched = wire.merge(current, {"spec": {"replicas": replicas}})
        self._check_or_422("Fleet", name, patched)
        self._bump(patched)
        self.fleets[(ns, name)] = patched
        return 200, self._scale_of(patched)

    def _merge_patch(self, call: Call) -> dict[str, Any]:
        if call.content_type != MERGE_PATCH:
            raise Reply(
                415,
                wire.status(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format: {call.content_type}",
                ),
            )
        if not isinstance(call.body, dict):
            raise Reply(400, wire.status(400, "BadRequest", "the patch is not a JSON object"))
        return call.body

    def _check_or_422(self, kind: str, name: str, document: dict[str, Any]) -> None:
        found = wire.problems(self.schemas[kind], document) if self.schemas else []
        if found:
            field, message = found[0]
            raise Reply(
                422,
                wire.status(
                    422, "Invalid", f'{kind}.agones.dev "{name}" is invalid: {field}: {message}'
                ),
            )

    @staticmethod
    def _bump(document: dict[str, Any]) -> None:
        meta = document["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        meta["generation"] = int(meta.get("generation", 1)) + 1

    @staticmethod
    def _scale_of(fleet: dict[str, Any]) -> dict[str, Any]:
        meta = fleet["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion")},
            "spec": {"replicas": fleet["spec"].get("replicas", 0)},
            "status": {
                "replicas": fleet["status"].get("replicas", 0),
                "selector": f"agones.dev/fleet={meta['name']}",
            },
        }


def _route(method: str, path: str) -> tuple[str | None, dict[str, str]]:
    for verb, pattern, name in ROUTES:
        found = pattern.match(path)
        if found and verb == method:
            return name, found.groupdict()
    return None, {}


def _handler(kube: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            call = Call(method, url.path, parse_qs(url.query), body, content_type)
            kube.calls.append(call)
            code, document = kube.serve(call, self.headers.get("Authorization"))
            data, kind = json.dumps(document).encode(), "application/json"
            if _route(method, url.path)[0] in kube.garbled:
                code, data, kind = 502, b"<html><h1>502 Bad Gateway</h1></html>", "text/html"
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
