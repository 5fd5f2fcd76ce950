"""Homeport's HTTP API as a dedicated server uses it, with its failures sorted in two kinds.

A game server cannot stop the game when its backend hiccups, so every call has a short timeout
and ends in one of three ways: an answer, `Unavailable` (no answer, or a 5xx or 429: the same
call may work in a moment), or `Problem` (Homeport refused with a problem document: the same
call will be refused again, unless the problem says otherwise, as `version-conflict` does).
"""

from __future__ import annotations

from typing import Any

import httpx

from homeport.sim.protocol import COLLECTION, KEY

PROBLEM_PREFIX = "urn:homeport:problem:"
TIMEOUT = httpx.Timeout(5.0, connect=3.0)


class Unavailable(Exception):
    """No useful answer this time; try again later."""


class Problem(Exception):
    """Homeport refused the call; `slug` is the problem type without its URN prefix."""

    def __init__(self, status: int, slug: str, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {slug}")
        self.status = status
        self.slug = slug
        self.body = body


class Homeport:
    def __init__(
        self, url: str, key: str, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=TIMEOUT,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def register(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/servers", body)

    async def heartbeat(self, server_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("PUT", f"/v1/servers/{server_id}/heartbeat", body)

    async def deregister(self, server_id: str) -> None:
        try:
            await self._call("DELETE", f"/v1/servers/{server_id}")
        except Problem as problem:
            if problem.status != 404:  # already gone: the lease ran out first
                raise

    async def validate(self, token: str, server_id: str | None) -> dict[str, Any]:
        body = {"player_token": token, "server_id": server_id}
        return await self._call("POST", "/v1/validate", body)

    async def read_progress(self, player_id: str) -> tuple[object, int]:
        """The stored progress document and its version; (None, 0) when there is none."""
        try:
            answer = await self._call("GET", _progress_path(player_id))
        except Problem as problem:
            if problem.slug == "document-not-found":
                return None, 0
            raise
        return answer.get("value"), _version(answer)

    async def write_progress(self, player_id: str, value: dict[str, Any], version: int) -> int:
        """Replace the version this server last saw (0: create); the new version."""
        body = {"value": value, "version": version}
        return _version(await self._call("PUT", _progress_path(player_id), body))

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The answer's JSON object ({} for an empty one)."""
        try:
            answer = await self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise Unavailable(f"{method} {path}: {type(exc).__name__} {exc}") from exc
        if answer.status_code >= 500 or answer.status_code == 429:
            raise Unavailable(f"{method} {path}: {answer.status_code}")
        if answer.status_code >= 400:
            raise _problem(answer)
        if not answer.content:
            return {}
        try:
            value = answer.json()
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise Unavailable(f"{method} {path}: {answer.status_code} without a JSON object")
        return value


def _progress_path(player_id: str) -> str:
    return f"/v1/players/{player_id}/data/{COLLECTION}/{KEY}"


def _version(document: dict[str, Any]) -> int:
    version = document.get("version")
    if not isinstance(version, int):
        raise Unavailable(f"a document answer without a version: {document}")
    return version


def _problem(answer: httpx.Response) -> Problem:
    try:
        body = answer.json()
    except ValueError:
        body = {}
    kind = body.get("type") if isinstance(body, dict) else None
    if isinstance(kind, str) and kind.startswith(PROBLEM_PREFIX):
        return Problem(answer.status_code, kind.removeprefix(PROBLEM_PREFIX), body)
    return Problem(answer.status_code, f"http-{answer.status_code}", {})


class WorldCalls:
    """The worlds API as a game server saves and loads its world (bytes, not JSON)."""

    def __init__(self, homeport: Homeport, world: str) -> None:
        self._http = homeport._http
        self._call = homeport._call
        self.base = f"/v1/worlds/{world}"

    async def latest(self) -> dict[str, Any] | None:
        """The latest snapshot with its manifest; None for a world never saved."""
        try:
            answer = await self._call("GET", self.base)
        except Problem as problem:
            if problem.slug == "world-not-found":
                return None
            raise
        latest = answer.get("latest")
        return latest if isinstance(latest, dict) else None

    async def chunk(self, sha256: str) -> bytes:
        answer = await self._bytes("GET", f"{self.base}/chunks/{sha256}")
        return answer.content

    async def missing(self, hashes: list[str]) -> list[str]:
        answer = await self._call("POST", f"{self.base}/chunks/missing", {"hashes": hashes})
        return [str(h) for h in answer.get("missing", [])]

    async def upload(self, sha256: str, data: bytes) -> None:
        await self._bytes("PUT", f"{self.base}/chunks/{sha256}", data)

    async def commit(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", f"{self.base}/snapshots", body)

    async def lease(self) -> None:
        await self._call("POST", f"{self.base}/lease")

    async def release(self) -> None:
        await self._call("DELETE", f"{self.base}/lease")

    async def _bytes(self, method: str, path: str, data: bytes | None = None) -> httpx.Response:
        headers = {"content-type": "application/octet-stream"} if data is not None else {}
        try:
            answer = await self._http.request(method, path, content=data, headers=headers)
        except httpx.TransportError as exc:
            raise Unavailable(f"{method} {path}: {type(exc).__name__} {exc}") from exc
        if answer.status_code >= 500 or answer.status_code == 429:
            raise Unavailable(f"{method} {path}: {answer.status_code}")
        if answer.status_code >= 400:
            raise _problem(answer)
        return answer
