"""Group commits on PostgreSQL when the server shuts down between a group's statements and its
COMMIT: the group answers "retry shortly", nothing of it is kept, and the next group runs on
a connection of its own instead of the broken one."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from sqlalchemy import Connection, make_url

from homeport.db.engine import create_engine
from homeport.db.groups import GroupWriter
from homeport.errors import HomeportError
from homeport.problems import database_unavailable
from homeport.settings import Settings


def _error_response(**fields: str) -> bytes:
    """A PostgreSQL ErrorResponse message, as it crosses the wire."""
    body = b"".join(code.encode() + value.encode() + b"\0" for code, value in fields.items())
    body += b"\0"
    return b"E" + struct.pack("!i", len(body) + 4) + body


# What every backend sends its client on a fast shutdown (`pg_ctl stop -m fast`) before it
# closes the socket. A client between two statements reads it before it sees the close.
SHUTDOWN_NOTICE = _error_response(
    S="FATAL", V="FATAL", C="57P01", M="terminating connection due to administrator command"
)


class ProbeWriter(GroupWriter[int, int]):
    """Inserts each item into `group_write_probe`; told to, hears the shutdown notice after
    its statements, which is where the COMMIT comes next."""

    def __init__(self, settings: Settings, own_connection: bool) -> None:
        self.engine = create_engine(settings)
        super().__init__(settings, self.engine)
        self.own_connection = own_connection
        self.shut_down_next = False
        self.connections: list[asyncpg.Connection] = []

    async def write_postgres(
        self, connection: asyncpg.Connection, items: list[int]
    ) -> list[int | HomeportError]:
        rows = [(i,) for i in items]
        await connection.executemany("INSERT INTO group_write_probe VALUES ($1)", rows)
        self.connections.append(connection)
        if self.shut_down_next:
            self.shut_down_next = False
            connection._protocol.data_received(SHUTDOWN_NOTICE)
        return list(items)

    def write_sqlite(self, connection: Connection, items: list[int]) -> list[int | HomeportError]:
        raise AssertionError("PostgreSQL only")


@pytest.fixture
async def admin(make_settings: Callable[..., Settings]) -> AsyncIterator[asyncpg.Connection]:
    settings = make_settings()
    if settings.is_sqlite:
        pytest.skip("PostgreSQL's protocol")
    dsn = make_url(settings.database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    await connection.execute("CREATE TABLE group_write_probe (n int NOT NULL)")
    yield connection
    await connection.execute("DROP TABLE group_write_probe")
    await connection.close()


@pytest.mark.parametrize("own_connection", [False, True], ids=["pooled", "own"])
async def test_a_shutdown_notice_before_commit_answers_retry_and_the_next_group_goes_on(
    admin: asyncpg.Connection, make_settings: Callable[..., Settings], own_connection: bool
) -> None:
    writer = ProbeWriter(make_settings(), own_connection)
    try:
        assert await writer.submit(1) == 1
        writer.shut_down_next = True
        refusal: Exception | None = None
        try:
            await writer.submit(2)
        except Exception as exc:
            refusal = exc
        assert refusal is not None, "a group that never committed was answered as written"
        assert database_unavailable(refusal), repr(refusal)
        broken = writer.connections[-1]
        assert broken.is_closed(), "the broken connection was left for the next group"
        assert await writer.submit(3) == 3
        assert writer.connections[-1] is not broken
        assert await writer.submit(4) == 4
    finally:
        await writer.close()
        await writer.engine.dispose()
    kept = [row["n"] for row in await admin.fetch("SELECT n FROM group_write_probe ORDER BY n")]
    assert kept == [1, 3, 4]
