"""`homeport fleet list|status|scale|drain` against the database a server would use."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from homeport.clock import SystemClock
from homeport.db.engine import create_engine, create_sessionmaker
from homeport.db.session import unit_of_work
from homeport.fleet import keys
from homeport.fleet.allocation import new_server
from homeport.fleet.models import GameServer
from homeport.fleet.spec import FleetSpec
from homeport.fleet.spec import GameServerState as S
from homeport.settings import Settings
from tests.e2e.live import cli, environment

SPEC = FleetSpec(command=["./server.x86_64", "--headless"], scaling={"buffer": 2})


async def _starting_server(settings: Settings) -> str:
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            row = new_server("demo", SPEC, SystemClock(), reason="")
            row.state, row.port, row.pid = S.READY.value, 7001, 4242
            row.started_at = SystemClock().now()
            session.add(row)
            await keys.issue_key(session, SystemClock(), row, SPEC)
        return str(row.id)
    finally:
        await engine.dispose()


async def _state(settings: Settings, server_id: str) -> str:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            row = await session.get(GameServer, uuid.UUID(server_id))
            assert row is not None
            return row.state
    finally:
        await engine.dispose()


def test_fleet_commands(db_url: str, tmp_path: Path) -> None:
    env = environment(
        tmp_path / "data",
        db_url,
        HOMEPORT_FLEETS=json.dumps({"demo": SPEC.model_dump(mode="json")}),
    )
    settings = Settings(data_dir=tmp_path / "data", db_url=db_url, fleets={"demo": SPEC})
    listed = cli(env, "fleet", "list").stdout
    assert listed.strip() == "demo\tconfig\tbuffer 2, min 0, max 10\tno servers"
    assert cli(env, "fleet", "status").stdout.strip() == "no servers"

    server_id = asyncio.run(_starting_server(settings))
    status = cli(env, "fleet", "status", "demo").stdout
    assert f"{server_id}\tdemo\tready\t127.0.0.1:7001\t0 players" in status
    assert "pid 4242" in status

    assert cli(env, "fleet", "scale", "demo", "1").stdout.startswith("demo: 1 (1 ready)")
    assert "fixed 1, max 10" in cli(env, "fleet", "list").stdout
    cli(env, "fleet", "scale", "demo", "auto")
    assert "buffer 2, min 0" in cli(env, "fleet", "list").stdout

    assert cli(env, "fleet", "drain", server_id).stdout.strip() == f"{server_id}: draining"
    assert asyncio.run(_state(settings, server_id)) == "draining"

    refused = cli(env, "fleet", "drain", server_id, check=False)
    assert refused.returncode == 0, "draining again is harmless"
    assert cli(env, "fleet", "drain", "not-an-id", check=False).returncode == 2
    unknown = cli(env, "fleet", "drain", "8a2f6f0e-8c43-4b3b-9a55-4d3bb2b2a0e1", check=False)
    assert unknown.returncode == 1
    assert "No server of this fleet has this id" in unknown.stderr
    assert cli(env, "fleet", "scale", "demo", "many", check=False).returncode == 2
    assert cli(env, "fleet", "scale", "nope", "1", check=False).returncode == 1
