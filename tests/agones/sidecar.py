"""A stand-in for the Agones SDK sidecar on loopback, speaking its REST wire format: the
grpc-gateway in front of the SDK server answers JSON (`{}` for the empty message), refuses a body
that is not JSON with a gRPC status document, and streams `GET /watch/gameserver` as chunked
newline-delimited `{"result": GameServer}` messages, one per change. State changes follow the
SDK: `/ready` → Ready, `/allocate` → Allocated, `/reserve` → Reserved, `/shutdown` → Shutdown;
SDK labels and annotations get Agones' `agones.dev/sdk-` prefix. Tests drive the rest (an
allocation by Homeport, a deletion) with `change()`."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (method, path) of the SDK's REST API (sdk.swagger.json).
ROUTES = {
    ("POST", "/ready"),
    ("POST", "/health"),
    ("POST", "/allocate"),
    ("POST", "/shutdown"),
    ("POST", "/reserve"),
    ("GET", "/gameserver"),
    ("GET", "/watch/gameserver"),
    ("PUT", "/metadata/label"),
    ("PUT", "/metadata/annotation"),
}
STATES = {
    "/ready": "Ready",
    "/allocate": "Allocated",
    "/reserve": "Reserved",
    "/shutdown": "Shutdown",
}
SDK_PREFIX = "agones.dev/sdk-"


class FakeSidecar:
    def __init__(self, game_port: int = 7777) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.game_server: dict[str, Any] = {
            "object_meta": {
                "name": f"godot-{uuid.uuid4().hex[:5]}",
                "namespace": "default",
                "uid": str(uuid.uuid4()),
                "resource_version": "1",
                "generation": "1",
                "creation_timestamp": str(int(time.time())),
                "labels": {"agones.dev/fleet": "godot"},
                "annotations": {},
            },
            "spec": {"health": {"period_seconds": 5, "failure_threshold": 3}},
            "status": {
                "state": "Scheduled",
                "address": "127.0.0.1",
                "ports": [{"name": "default", "port": game_port}],
            },
        }
        self.changed = threading.Condition()
        self.version = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._closed = False

    def start(self) -> FakeSidecar:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self.changed:
            self._closed = True
            self.changed.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def change(self, state: str | None = None, annotations: dict[str, str] | None = None) -> None:
        """What the Agones controller or an allocation does to the GameServer."""
        with self.changed:
            if state is not None:
                self.game_server["status"]["state"] = state
            if annotations:
                self.game_server["object_meta"]["annotations"].update(annotations)
            meta = self.game_server["object_meta"]
            meta["resource_version"] = str(int(meta["resource_version"]) + 1)
            self.version += 1
            self.changed.notify_all()

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in list(self.calls) if (m, p) == (method, path))

    def wait_for(self, method: str, path: str, times: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.count(method, path) < times:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path} not called {times}x: {self.calls}")
            time.sleep(0.05)

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        with self.changed:
            return self.version, copy.deepcopy(self.game_server)

    def next_change(self, seen: int, timeout: float) -> tuple[int, dict[str, Any]] | None:
        with self.changed:
            self.changed.wait_for(lambda: self.version != seen or self._closed, timeout)
            if self._closed:
                return None
            return self.version, copy.deepcopy(self.game_server)


def _handler(sidecar: FakeSidecar) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def _serve(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if (method, path) not in ROUTES:
                known = any(p == path for _, p in ROUTES)
                code, status = (405, 12) if known else (404, 5)
                self._json(code, {"code": status, "message": "Not Found", "details": []})
                return
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = None
            if not isinstance(body, dict):
                self._json(400, {"code": 3, "message": "invalid JSON body", "details": []})
                return
            sidecar.calls.append((method, path, body))
            if path == "/watch/gameserver":
                self._watch()
            elif path == "/gameserver":
                self._json(200, sidecar.snapshot()[1])
            elif path.startswith("/metadata/"):
                if not isinstance(body.get("key"), str) or not isinstance(body.get("value"), str):
                    self._json(400, {"code": 3, "message": "key and value", "details": []})
                    return
                kind = "labels" if path.endswith("label") else "annotations"
                with sidecar.changed:
                    sidecar.game_server["object_meta"][kind][SDK_PREFIX + body["key"]] = body[
                        "value"
                    ]
                sidecar.change()
                self._json(200, {})
            else:
                if path in STATES:
                    sidecar.change(STATES[path])
                self._json(200, {})

        def _json(self, code: int, document: Any) -> None:
            data = json.dumps(document).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _watch(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            version, current = sidecar.snapshot()
            try:
                while True:
                    line = json.dumps({"result": current}).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                    following = sidecar.next_change(version, timeout=3600)
                    if following is None:
                        self.wfile.write(b"0\r\n\r\n")
                        return
                    version, current = following
            except OSError:
                return

    return Handler
