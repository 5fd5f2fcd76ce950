"""The sim server's wire protocol, and the progress it keeps for each player.

A real game speaks ENet or WebSocket through Godot; tests, benchmarks and the demo need
something a few lines of asyncio can drive, so the sim speaks one UTF-8 command per line:

    client → server                 server → client
    HELLO <access token or ticket>  WELCOME <player id> <progress JSON> | DENIED <problem type>
    XP <1..10000>                   OK <xp> <level> | ERR invalid-xp
    BUILD <x> <y>                   CELL <x> <y> <value>   (the server keeps a world)
    LOOK <x> <y>                    CELL <x> <y> <value> | ERR no-world | ERR invalid-cell
    PING                            PONG
    QUIT                            BYE             (after the player's progress is saved)
    anything else                   ERR unknown-command
                                    BYE draining    (unasked: the server is stopping)

HELLO must come within `HELLO_TIMEOUT` seconds; a line longer than `MAX_LINE` bytes ends the
connection, so a client cannot make the server buffer without bound.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

MAX_LINE = 8192
HELLO_TIMEOUT = 10.0
MAX_XP_GAIN = 10_000
XP_PER_LEVEL = 1000
COLLECTION = "profile"
KEY = "progress"
"""Where a player's progress lives among their documents: `profile` is one of the collections
`POST /v1/validate` returns by default, so a joining player's progress comes with the answer
and spawning costs no second request."""


def level_for(xp: int) -> int:
    return 1 + xp // XP_PER_LEVEL


def _count(value: object) -> int:
    """A stored number trusted only as far as it is well formed: a player whose document some
    other tool mangled must still be able to join."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclasses.dataclass
class Progress:
    xp: int = 0
    level: int = 1
    sessions: int = 0

    @classmethod
    def from_value(cls, value: object) -> Progress:
        if not isinstance(value, dict):
            return cls()
        xp = _count(value.get("xp"))
        return cls(xp=xp, level=level_for(xp), sessions=_count(value.get("sessions")))

    def as_value(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def copy(self) -> Progress:
        return dataclasses.replace(self)

    def gain(self, xp: int) -> bool:
        """Add xp; true on a level up, the moment a game saves at once."""
        before = self.level
        self.xp += xp
        self.level = level_for(self.xp)
        return self.level > before

    def merged(self, stored: Progress) -> Progress:
        """What to keep when another writer saved this player meanwhile: xp only ever grows in
        this game, so the higher xp is the truer one (and likewise the session count)."""
        xp = max(self.xp, stored.xp)
        return Progress(xp=xp, level=level_for(xp), sessions=max(self.sessions, stored.sessions))


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def line(*words: object) -> bytes:
    return (" ".join(str(word) for word in words) + "\n").encode()


async def read_line(reader: asyncio.StreamReader) -> str | None:
    """The next line without its end; None once the peer is gone or sent an over-long line
    (the reader's limit is `MAX_LINE`), either of which ends the conversation."""
    try:
        raw = await reader.readline()
    except (ValueError, ConnectionError):
        return None
    if not raw.endswith(b"\n"):
        return None
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")
