"""A fake player for the sim server: what tests, benchmarks and the demo connect with.

player = await connect("127.0.0.1", port, access_token)   # Denied("token-invalid") if refused
xp, level = await player.gain_xp(250)
await player.quit()                                        # the server saved us: "BYE"
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from homeport.sim.protocol import MAX_LINE, read_line


class Denied(Exception):
    """The server refused the player; `problem_type` says why (`token-invalid`, `server-full`)."""

    def __init__(self, problem_type: str) -> None:
        super().__init__(f"denied: {problem_type}")
        self.problem_type = problem_type


class Disconnected(Exception):
    """The server ended the conversation instead of answering; `last_line` is what it said
    last (`BYE draining` when it is stopping), None if it just closed."""

    def __init__(self, last_line: str | None) -> None:
        super().__init__(f"disconnected by the server: {last_line!r}")
        self.last_line = last_line


class UnexpectedAnswer(Exception):
    """The server answered something this client did not ask for."""


async def connect(
    host: str,
    port: int,
    token: str,
    *,
    timeout: float = 10,  # noqa: ASYNC109 - bounds every answer, not one wait
) -> SimPlayer:
    """Join with an access token or a join ticket; `timeout` bounds every later answer too."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, limit=MAX_LINE), timeout
    )
    player = SimPlayer(reader, writer, timeout=timeout)
    try:
        welcome = await player._ask(f"HELLO {token}")
        word, _, rest = welcome.partition(" ")
        if word == "DENIED":
            raise Denied(rest)
        player_id, _, progress = rest.partition(" ")
        if word != "WELCOME" or not player_id:
            raise UnexpectedAnswer(welcome)
        player.player_id = player_id
        player.progress = json.loads(progress)
    except BaseException:
        await player.close()
        raise
    return player


class SimPlayer:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, timeout: float
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self.player_id = ""
        self.progress: dict[str, Any] = {}
        """As the server last told: `xp`, `level` and `sessions`."""

    async def gain_xp(self, amount: int) -> tuple[int, int]:
        """The player's xp and level after the gain."""
        answer = await self._ask(f"XP {amount}")
        words = answer.split(" ")
        if len(words) != 3 or words[0] != "OK":
            raise UnexpectedAnswer(answer)
        xp, level = int(words[1]), int(words[2])
        self.progress.update(xp=xp, level=level)
        return xp, level

    async def cell(self, command: str, x: int, y: int) -> int:
        """BUILD (raise the cell by one) or LOOK; the cell's value after."""
        answer = await self._ask(f"{command} {x} {y}")
        words = answer.split(" ")
        if len(words) != 4 or words[0] != "CELL":
            raise UnexpectedAnswer(answer)
        return int(words[3])

    async def ping(self) -> None:
        if (answer := await self._ask("PING")) != "PONG":
            raise UnexpectedAnswer(answer)

    async def quit(self) -> None:
        """Leave politely: the server answers once it has saved the player."""
        try:
            answer = await self._ask("QUIT")  # "BYE draining" if the server is stopping anyway
            if answer.split(" ")[0] != "BYE":
                raise UnexpectedAnswer(answer)
        finally:
            await self.close()

    async def close(self) -> None:
        """Drop the connection without a word, as a crashed game client would."""
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    async def wait_closed_by_server(self) -> str | None:
        """Wait until the server closes the connection (the caller bounds the wait); the last
        line it sent, if any."""
        last = None
        try:
            while (text := await read_line(self._reader)) is not None:
                last = text
        finally:
            await self.close()
        return last

    async def _ask(self, request: str) -> str:
        self._writer.write(f"{request}\n".encode())
        await self._writer.drain()
        async with asyncio.timeout(self._timeout):
            answer = await read_line(self._reader)
        if answer is None or (answer.startswith("BYE ") and request != "QUIT"):
            raise Disconnected(answer)
        return answer
