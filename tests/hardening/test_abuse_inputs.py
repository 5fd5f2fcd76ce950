"""SQL meta-characters in every string field of every operation of the live OpenAPI document.

Each operation gets a valid request built from its schema (real ids, fresh keys and emails),
checked to get past authentication and validation; then each string field in turn (body fields
at any depth, keys and values of free-form objects, path, query and header parameters) carries
each payload (`test_abuse_walker.py` builds and sends them). No answer may be a 5xx, every
refusal is problem+json, a value that is accepted reads back byte for byte, and the database
keeps its tables and data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import func, inspect, select

from homeport.db.engine import create_engine
from homeport.db.models import Base
from homeport.identity.models import Account
from homeport.settings import Settings
from tests.hardening.test_abuse import PASSWORD, Live, live_server
from tests.hardening.test_abuse_walker import Walker

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    extra = {"HOMEPORT_AUTH_ADDRESS_MAX_ATTEMPTS": "1000000", "HOMEPORT_FLEET_ADMIN_COMMANDS": "1"}
    with live_server(request, tmp_path_factory, **extra) as server:
        yield server


async def _tables_and_accounts(db_url: str) -> tuple[set[str], int]:
    engine = create_engine(Settings(db_url=db_url))
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            accounts = await conn.scalar(select(func.count()).select_from(Account))
    finally:
        await engine.dispose()
    return names, accounts or 0


def test_sql_meta_characters_in_every_string_field(live: Live) -> None:
    walker = Walker(live)
    http = walker.http
    try:
        tables, accounts = asyncio.run(_tables_and_accounts(live.db_url))
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        sent, wrong = walker.walk()
        assert not wrong, f"{len(wrong)} of {sent}:\n" + "\n".join(wrong)
        # Every table is still there, and what was stored before the walk is intact.
        tables_after, accounts_after = asyncio.run(_tables_and_accounts(live.db_url))
        assert tables_after == tables
        assert accounts_after > accounts
        login = {"email": walker.email, "password": PASSWORD}
        assert http.post("/v1/auth/login", json=login).status_code == 200
        assert http.get("/v1/servers").status_code == 200
        assert http.get(f"/v1/servers/{walker.server}").json()["name"] == "Walk"
        kept = http.get(walker.kept, headers=live.auth).json()
        assert kept["value"] == {"note": "kept"}
    finally:
        for client in walker.clients:
            client.close()


SEARCHES = {"%": "100% pure", "0% p": "100% pure", "_": "snake_case", "e_c": "snake_case"}
SEARCHES["k\\s"] = "back\\slash"
"""Searches, each with the one name it must find; unescaped, it would also find a decoy."""
DECOYS = ("100 pure", "snakeXcase", "backslash")


def test_like_wildcards_in_a_server_search_match_only_themselves(live: Live) -> None:
    with live.client() as http:
        for n, name in enumerate({*SEARCHES.values(), *DECOYS}):
            server = {"name": name, "port": 7100 + n, "max_players": 4}
            assert http.post("/v1/servers", json=server, headers=live.auth).status_code == 201
        for q, expected in SEARCHES.items():
            listed = http.get("/v1/servers", params={"q": q, "limit": 100}).json()["servers"]
            found = {server["name"] for server in listed}
            assert expected in found, q
            assert all(q in name.lower() for name in found), (q, found)
