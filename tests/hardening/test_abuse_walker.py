"""The machinery of `test_abuse_inputs.py`: valid requests built from the live OpenAPI
document, the string slots in them, and a walk that puts each payload in each slot.

It holds no tests of its own; it lives apart so that each file stays readable.
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx

from tests.hardening.test_abuse import PASSWORD, Live

PAYLOADS: tuple[str, ...] = ("'", '"', ";", "--", "/*", "\\", "%", "_")
PAYLOADS += ("' OR '1'='1", "'); DROP TABLE accounts;--")
PAYLOADS += ("\x00",)  # ends strings in C, and PostgreSQL stores no text holding it
UNSENDABLE_IN_HEADERS = {"\x00"}
"""HTTP itself has no way to carry these in a header."""
NOT_READ_BACK = {
    *("password", "email", "refresh_token", "player_token", "private_metadata"),
    *("Idempotency-Key", "If-Match"),
    "patch",  # a batch write with op `put` (the default) ignores its patch
}
"""Fields that are stored but never shown again (a password is checked by logging in)."""
LOGOUT = "/v1/auth/logout"
"""Called with no Bearer: that is when the refresh token in its body is looked up."""
BODY_EXTRAS: dict[str, dict[str, Any]] = {
    "/v1/fleets/{fleet}/allocate": {"wait": 0},
    "/v1/worlds/{world}/snapshots": {"manifest": {}},  # a save of an empty world
}
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
"""The hash of no bytes: the chunk a bodiless PUT uploads."""
"""Optional fields a valid request needs all the same (an allocation must not wait 30 s)."""
ANSWERS = {LOGOUT: {401}, "/v1/fleets/{fleet}/allocate": {503}}
"""Refusals that are the operation's own answer to a valid request: no refresh token; no
ready server in a fleet whose agent is off (a documented 503 with Retry-After)."""
DOCUMENT = "/v1/players/{player}/data/{collection}/{key}"
READS = {
    ("POST", "/v1/auth/register"): "/v1/me",
    ("POST", "/v1/auth/device"): "/v1/me",
    ("POST", "/v1/admin/players/{player_id}/ban"): "{parent}",
    ("POST", "/v1/servers"): "/v1/servers/{answer[server_id]}",
    ("PUT", "/v1/servers/{server_id}/heartbeat"): "{parent}",
    ("PUT", DOCUMENT): "{url}",
    ("PATCH", DOCUMENT): "{url}",
    ("POST", "/v1/players/{player}/data"): "{url}/settings/{body[writes][0][key]}",
    ("POST", "/v1/players/{player}/inventory/{kind}"): "{parent}/ledger",
    ("POST", "/v1/leaderboards/{board_id}/records"): "{url}/{body[player_id]}",
    ("POST", "/v1/admin/leaderboards"): "/v1/leaderboards/{body[id]}",
    ("PUT", "/v1/admin/fleets/{fleet}"): "/v1/fleets/walk",
}
"""Where a write's strings can be read back (`url` is the write's own path; `parent`, that
path less its last segment; `body` and `answer`, the request's and the response's JSON)."""
_fresh = itertools.count(1)
Slot = tuple[str, tuple[str | int, ...], bool]
"""(body, path, query or header; the path to a string; whether it is a free-form object)."""


class Builder:
    """A valid value for a JSON schema, and the slots where strings go."""

    def __init__(self, document: dict[str, Any], named: dict[str, Callable[[], Any]]) -> None:
        self.schemas: dict[str, Any] = document["components"]["schemas"]
        self.named = named
        self.slots: list[Slot] = []

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in schema:
            return self.resolve(self.schemas[schema["$ref"].rsplit("/", 1)[1]])
        options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        return self.resolve(options[0]) if options else schema

    def value(self, schema: dict[str, Any], at: tuple[str | int, ...], where: str) -> Any:
        schema = self.resolve(schema)
        name = next((p for p in reversed(at) if isinstance(p, str)), "")
        kind = schema.get("type")
        if kind == "array":
            return [self.value(schema["items"], (*at, 0), where)] if "items" in schema else []
        if kind == "object":
            return self.object(schema, at, where)
        if kind == "string" or "enum" in schema:
            self.slots.append((where, at, False))
        if "const" in schema or "enum" in schema:
            return schema.get("const", schema.get("enum", [None])[0])
        if name in self.named:
            return self.named[name]()
        if kind in ("integer", "number"):
            return max(schema.get("minimum", 1), min(1, schema.get("maximum", 1)))
        if kind != "string":
            return schema.get("default", False)
        if schema.get("format") == "uuid":
            return self.named["player"]()
        chosen = [v for v in ("base", "1") if re.fullmatch(schema.get("pattern", ".*"), v)]
        assert chosen, f"name a valid value for {at} in Walker.named: {schema}"
        return chosen[0]

    def object(self, schema: dict[str, Any], at: tuple[str | int, ...], where: str) -> Any:
        if schema.get("additionalProperties") is True or "patternProperties" in schema:
            values = schema.get("patternProperties", {"": {"type": "string"}})
            self.slots.append((where, at, True))
            return {"walk": self.value(next(iter(values.values())), (*at, "walk"), where)}
        required = set(schema.get("required", []))
        built = {}
        for name, prop in schema.get("properties", {}).items():
            value = self.value(prop, (*at, name), where)
            # Optional fields stay out of the valid request, but for free-form objects (a
            # document's value, metadata); their slots get payloads all the same.
            free_form = self.resolve(prop).get("additionalProperties") is True
            if name in required or (free_form and name != "patch"):
                built[name] = value
        return built


def _set(root: Any, at: tuple[str | int, ...], value: Any) -> Any:
    """`root` with `value` at `at`, creating the containers on the way."""
    if not at:
        return value
    node = root
    for step, after in itertools.pairwise(at):
        empty: Any = [] if isinstance(after, int) else {}
        if isinstance(node, list):
            if not node:
                node.append(empty)
            node = node[0]
        else:
            node = node.setdefault(step, empty)
    if isinstance(node, list):
        node[:] = [value]
    else:
        node[at[-1]] = value
    return root


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


class Walker:
    """A world to aim at (players, a server, a board, a fleet) and the requests that walk it."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.clients: list[httpx.Client] = []
        self.local = threading.local()
        http = self.http
        self.document: dict[str, Any] = http.get("/openapi.json").json()
        self.email = "walker@example.com"
        self.victim = "walked@example.com"
        """Logged in to with each payload for a password: it ends up locked for a while."""
        for email in (self.email, self.victim):
            account = {"email": email, "password": PASSWORD, "display_name": "W"}
            assert http.post("/v1/auth/register", json=account).status_code == 201
        player = self.device()
        self.player: str = player["player"]["id"]
        self.token: str = player["access_token"]
        self.target: str = self.device()["player"]["id"]
        auth = live.auth
        server = {"name": "Walk", "port": 7000, "max_players": 8}
        self.server: str = http.post("/v1/servers", json=server, headers=auth).json()["server_id"]
        assert http.post("/v1/admin/leaderboards", json={"id": "walk"}, headers=auth).is_success
        assert http.put("/v1/admin/fleets/walk", json={}, headers=auth).is_success
        self.kept = f"/v1/players/{self.player}/data/settings/kept"
        assert http.put(self.kept, json={"value": {"note": "kept"}}, headers=auth).is_success
        self.players: set[str] = set()
        """Routes that take a player's token rather than the admin key."""

    @property
    def http(self) -> httpx.Client:
        """A client of this thread's own: operations are walked four at a time."""
        client: httpx.Client | None = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = self.live.client()
            self.clients.append(client)
        return client

    def device(self) -> dict[str, Any]:
        made = self.http.post("/v1/auth/device", json={"device_id": f"walk-{next(_fresh):012d}"})
        assert made.status_code == 201, made.text
        answer: dict[str, Any] = made.json()
        return answer

    def named(self, route: str) -> dict[str, Callable[[], Any]]:
        """Valid values for fields that a pattern, a format or the world constrains; those that
        must be unique are new for every request."""
        admin = route.startswith("/v1/admin/")
        return {
            "email": lambda: self.victim if route == "/v1/auth/login" else f"w{next(_fresh)}@x.io",
            "password": lambda: PASSWORD,
            "device_id": lambda: f"walk-{next(_fresh):012d}",
            "refresh_token": lambda: self.device()["refresh_token"],
            "player_token": lambda: self.token,
            "player_id": lambda: self.target if admin else self.player,
            "player": lambda: self.player,
            "server_id": lambda: self.server,
            "board_id": lambda: "walk",
            "fleet": lambda: "walk",
            "collection": lambda: "settings",
            "key": lambda: f"k{next(_fresh)}",
            "id": lambda: f"walk-{next(_fresh)}",
            "item": lambda: "gold",
            "score": lambda: next(_fresh),  # a better score, so that its metadata is stored
            "Idempotency-Key": lambda: f"walk-{next(_fresh)}",
            "world": lambda: "walk-world",
            "owner": lambda: "",
            "sha256": lambda: EMPTY_SHA256,
            "hashes": lambda: EMPTY_SHA256,
            "walk": lambda: EMPTY_SHA256,  # a free-form object's value; a manifest needs a hash
        }

    def build(self, route: str, spec: dict[str, Any]) -> tuple[dict[str, Any], list[Slot]]:
        """A valid request (body, path, query, header) and its string slots."""
        builder = Builder(self.document, self.named(route))
        parts: dict[str, Any] = {"body": None, "path": {}, "query": {}, "header": {}}
        for param in spec.get("parameters", []):
            value = builder.value(param["schema"], (param["name"],), param["in"])
            if param["required"] or param["name"] in builder.named:
                parts[param["in"]][param["name"]] = value
        content = spec.get("requestBody", {}).get("content", {}).get("application/json")
        if content is not None:
            parts["body"] = builder.value(content["schema"], (), "body")
            parts["body"].update(copy.deepcopy(BODY_EXTRAS.get(route, {})))  # payloads go in
        return parts, builder.slots

    def send(self, method: str, route: str, parts: dict[str, Any]) -> httpx.Response:
        path = {name: quote(str(value), safe="") for name, value in parts["path"].items()}
        headers = dict(parts["header"])
        if route in self.players:
            headers["Authorization"] = f"Bearer {self.device()['access_token']}"
        elif route != LOGOUT:
            headers.update(self.live.auth)
        return self.http.request(
            method, route.format(**path), params=parts["query"], headers=headers, json=parts["body"]
        )

    def valid(self, method: str, route: str, spec: dict[str, Any]) -> str | None:
        """Send the valid request; what is wrong with its answer, if anything."""
        answer = self.send(method, route, self.build(route, spec)[0])
        if route != LOGOUT and answer.status_code == 401 and "token" in answer.json()["type"]:
            self.players.add(route)  # not a key's call: a player's
            answer = self.send(method, route, self.build(route, spec)[0])
        if answer.status_code in ANSWERS.get(route, ()):
            return None
        if answer.status_code >= 500 or answer.status_code in (401, 403, 422):
            return f"valid {method} {route}: {answer.status_code} {answer.text[:600]}"
        return None

    def walk(self) -> tuple[int, list[str]]:
        """Every payload in every slot of every operation: (requests sent, what went wrong).

        Operations on one kind of resource are walked in turn (an unban must not undo a ban
        before it is read back); different kinds, four at a time."""
        groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        for route, item in self.document["paths"].items():
            segments = [part for part in route.split("/") if part not in ("", "v1")]
            kind = "/".join(segments[:2]) if segments[0] == "admin" else segments[0]
            groups.setdefault(kind, []).extend((m.upper(), route, s) for m, s in item.items())

        def walk_group(
            operations: list[tuple[str, str, dict[str, Any]]],
        ) -> list[tuple[int, list[str]]]:
            return [self.walk_one(*operation) for operation in operations]

        with ThreadPoolExecutor(max_workers=4) as pool:
            walked = [found for done in pool.map(walk_group, groups.values()) for found in done]
        return sum(sent for sent, _ in walked), [
            problem for _, found in walked for problem in found
        ]

    def walk_one(self, method: str, route: str, spec: dict[str, Any]) -> tuple[int, list[str]]:
        """(requests sent, what went wrong) for one operation."""
        slots = self.build(route, spec)[1]
        # A valid DELETE would remove what the others need; its slots are refused anyway.
        problem = None if method == "DELETE" or not slots else self.valid(method, route, spec)
        if problem is not None:
            return 0, [problem]
        wrong: list[str] = []
        for where, at, is_key in slots:
            for payload in PAYLOADS:
                if where == "header" and payload in UNSENDABLE_IN_HEADERS:
                    continue
                parts = self.build(route, spec)[0]
                parts[where] = _set(parts[where], at, {payload: "v"} if is_key else payload)
                label = f"{method} {route} {where}{list(at)}{' key' * is_key} = {payload!r}"
                found = self.check(method, route, parts, payload, at)
                wrong += [f"{label}: {problem}" for problem in found]
        return len(slots) * len(PAYLOADS), wrong

    def check(
        self, method: str, route: str, parts: dict[str, Any], payload: str, at: tuple[Any, ...]
    ) -> list[str]:
        """Send one request carrying `payload` at `at`; what is wrong, if anything."""
        answer = self.send(method, route, parts)
        status = answer.status_code
        if status >= 500 and status not in ANSWERS.get(route, ()):
            return [f"{status} {answer.text[:200]}"]
        if status >= 400:
            kind = answer.headers.get("content-type")
            return [] if kind == "application/problem+json" else [f"{status} as {kind}"]
        body = parts["body"]
        if "password" in at and route in ("/v1/auth/register", "/v1/auth/link/email"):
            login = {"email": body["email"], "password": payload}
            again = self.http.post("/v1/auth/login", json=login)
            return [] if again.status_code == 200 else [f"accepted, then login {again.text}"]
        if NOT_READ_BACK.intersection(p for p in at if isinstance(p, str)):
            return []
        stored = self.read_back(method, route, parts, answer)
        if stored is None or payload in set(_strings(stored)):
            return []
        return [f"accepted, but read back as {str(stored)[:300]}"]

    def read_back(
        self, method: str, route: str, parts: dict[str, Any], answer: httpx.Response
    ) -> Any:
        """What a later read returns of the write just made; None when nothing shows it."""
        read = READS.get((method, route))
        if read is None:
            return None
        url = route.format(**{k: quote(str(v), safe="") for k, v in parts["path"].items()})
        fields = {"url": url, "parent": url.rsplit("/", 1)[0], "body": parts["body"]}
        headers = self.live.auth
        if read == "/v1/me":
            headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        got = self.http.get(read.format(answer=answer.json(), **fields), headers=headers)
        assert got.status_code == 200, got.text
        return got.json()
