"""Tickets through the API and the matcher's pass, in process, on both databases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from homeport.clock import FakeClock
from homeport.fleet import allocation
from homeport.fleet.models import GameServer
from homeport.matchmaking.passes import Matchmaker
from homeport.players.models import PlayerDocument
from homeport.state import AppState
from tests.factories import bearer, problem_type
from tests.matchmaking.conftest import World


async def test_two_players_get_one_server_and_a_connect_token_each(world: World) -> None:
    ((server_id, server_key),) = await world.servers(1)
    ann, bob = await world.player(), await world.player()
    tickets = [(await world.ticket(p)).json() for p in (ann, bob)]
    assert [t["state"] for t in tickets] == ["searching", "searching"]

    report = await world.run_pass()
    assert (report.proposed, report.allocated) == (1, 1)
    seen = [await world.read(p, t["id"]) for p, t in zip((ann, bob), tickets, strict=True)]
    assert {s["state"] for s in seen} == {"allocated"}
    assert {s["server"]["id"] for s in seen} == {server_id}
    assert len({s["match_id"] for s in seen}) == 1
    assert sorted(s["team"] for s in seen) == [0, 1]

    # The server validates each player's connect token with its own key, once.
    for player, ticket in zip((ann, bob), seen, strict=True):
        body = {"player_token": ticket["connect_token"], "server_id": server_id}
        answer = await world.client.post("/v1/validate", json=body, headers=bearer(server_key))
        assert answer.status_code == 200, answer.text
        assert answer.json()["player"]["id"] == player["player"]["id"]
        again = await world.client.post("/v1/validate", json=body, headers=bearer(server_key))
        assert again.status_code == 403

    # It learns the match in its heartbeat, and reads it with its key.
    beat = await world.client.put(
        f"/v1/servers/{server_id}/heartbeat", json={}, headers=bearer(server_key)
    )
    allocated = beat.json()["allocation"]
    assert allocated["match_id"] == seen[0]["match_id"]
    assert sorted(allocated["players"]) == sorted(p["player"]["id"] for p in (ann, bob))
    match = await world.client.get(
        f"/v1/matches/{allocated['match_id']}", headers=bearer(server_key)
    )
    assert match.status_code == 200, match.text
    assert match.json()["teams"] == allocated["metadata"]["teams"]


async def test_one_active_ticket_per_player_and_parties_are_checked(world: World) -> None:
    ann, bob = await world.player(), await world.player()
    assert (await world.ticket(ann)).status_code == 201
    second = await world.ticket(ann, queue="squads")
    assert problem_type(second) == "already-searching"
    in_party = await world.ticket(bob, queue="squads", party=[ann["player"]["id"]])
    assert problem_type(in_party) == "already-searching", "ann is searching already"
    unknown = await world.ticket(bob, queue="squads", party=[str(uuid.uuid4())])
    assert problem_type(unknown) == "party-invalid"
    too_big = await world.ticket(bob, queue="squads", party=[str(uuid.uuid4()) for _ in range(3)])
    assert problem_type(too_big) == "party-invalid"
    nowhere = await world.ticket(bob, queue="nowhere")
    assert problem_type(nowhere) == "queue-not-found"


async def test_a_party_member_sees_and_may_cancel_the_ticket(world: World) -> None:
    leader, member, stranger = await world.player(), await world.player(), await world.player()
    made = await world.ticket(leader, queue="squads", party=[member["player"]["id"]])
    assert made.status_code == 201, made.text
    ticket = made.json()
    assert ticket["players"] == [leader["player"]["id"], member["player"]["id"]]
    assert (await world.read(member, ticket["id"]))["state"] == "searching"
    hidden = await world.client.get(
        f"/v1/matchmaking/tickets/{ticket['id']}", headers=bearer(stranger["access_token"])
    )
    assert problem_type(hidden) == "ticket-not-found"
    cancelled = await world.client.delete(
        f"/v1/matchmaking/tickets/{ticket['id']}", headers=bearer(member["access_token"])
    )
    assert cancelled.json()["state"] == "cancelled"
    again = await world.client.delete(
        f"/v1/matchmaking/tickets/{ticket['id']}", headers=bearer(leader["access_token"])
    )
    assert problem_type(again) == "ticket-not-cancellable"
    assert (await world.ticket(member)).status_code == 201, "free to queue again"


async def test_a_failed_allocation_returns_the_tickets_then_fails_them(world: World) -> None:
    players = [await world.player(), await world.player()]
    tickets = [(await world.ticket(p)).json() for p in players]
    for attempt in (1, 2):
        report = await world.run_pass()
        assert report.failed == 1
        states = {
            (await world.read(p, t["id"]))["state"] for p, t in zip(players, tickets, strict=True)
        }
        assert states == {"searching"}, attempt
    await world.run_pass()
    final = [await world.read(p, t["id"]) for p, t in zip(players, tickets, strict=True)]
    assert {f["state"] for f in final} == {"failed"}
    assert "no-server-available" in final[0]["reason"] or "No ready server" in final[0]["reason"]


def cancel_during_allocation(
    monkeypatch: pytest.MonkeyPatch,
    world: World,
    player: dict[str, Any],
    ticket_id: str,
    *,
    before: Callable[[AsyncSession], Awaitable[None]] | None = None,
) -> None:
    """The player cancels right after the pass allocated the match's server (after `before`
    changed the database, in a transaction of its own)."""
    real = allocation.allocate

    async def allocate_then_cancel(*args: Any, **kwargs: Any) -> allocation.Allocated:
        found = await real(*args, **kwargs)
        if before is not None:
            async with world.state.sessions.begin() as session:
                await before(session)
        answer = await world.client.delete(
            f"/v1/matchmaking/tickets/{ticket_id}", headers=bearer(player["access_token"])
        )
        assert answer.status_code == 200, answer.text
        return found

    monkeypatch.setattr(allocation, "allocate", allocate_then_cancel)


async def test_a_cancel_during_allocation_abandons_the_match_and_frees_the_server(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ((server_id, _),) = await world.servers(1)
    ann, bob = await world.player(), await world.player()
    tickets = [(await world.ticket(p)).json() for p in (ann, bob)]
    cancel_during_allocation(monkeypatch, world, ann, tickets[0]["id"])
    report = await world.run_pass()
    assert report.abandoned == 1
    assert (await world.read(ann, tickets[0]["id"]))["state"] == "cancelled"
    bob_ticket = await world.read(bob, tickets[1]["id"])
    assert bob_ticket["state"] == "searching"
    assert bob_ticket["match_id"] is None
    async with world.state.sessions() as session:
        server = await session.get(GameServer, uuid.UUID(server_id))
    assert server is not None
    assert server.state == "draining"


async def test_an_abandoned_match_whose_server_already_crashed_still_settles(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is left to let go: the abandonment must not fail on the ended server, which
    would roll the pass back and leave the other player's ticket matched."""
    ((server_id, _),) = await world.servers(1)
    ann, bob = await world.player(), await world.player()
    tickets = [(await world.ticket(p)).json() for p in (ann, bob)]

    async def crash(session: AsyncSession) -> None:
        server = await session.get(GameServer, uuid.UUID(server_id))
        assert server is not None
        server.state, server.reason = "crashed", "exited with signal 9"

    cancel_during_allocation(monkeypatch, world, ann, tickets[0]["id"], before=crash)
    report = await world.run_pass()
    assert report.abandoned == 1, report
    bob_ticket = await world.read(bob, tickets[1]["id"])
    assert (bob_ticket["state"], bob_ticket["match_id"]) == ("searching", None)


async def test_tickets_time_out(world: World, clock: FakeClock) -> None:
    ann = await world.player()
    ticket = (await world.ticket(ann)).json()
    clock.advance(61)
    assert (await world.run_pass()).timed_out == 1
    assert (await world.read(ann, ticket["id"]))["state"] == "timed_out"


async def test_the_result_moves_ratings_once(world: World, state: AppState) -> None:
    ((_, server_key),) = await world.servers(1)
    ann, bob = await world.player(), await world.player()
    tickets = [(await world.ticket(p)).json() for p in (ann, bob)]
    await world.run_pass()
    seen = [await world.read(p, t["id"]) for p, t in zip((ann, bob), tickets, strict=True)]
    match_id = seen[0]["match_id"]
    winner_team = seen[0]["team"]
    ranks = [1, 2] if winner_team == 0 else [2, 1]
    path = f"/v1/matches/{match_id}/result"
    by_player = await world.client.post(
        path, json={"ranks": ranks}, headers=bearer(ann["access_token"])
    )
    assert problem_type(by_player) == "not-match-server"
    done = await world.client.post(path, json={"ranks": ranks}, headers=bearer(server_key))
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "completed"
    again = await world.client.post(path, json={"ranks": ranks}, headers=bearer(server_key))
    assert problem_type(again) == "result-already-recorded"
    async with state.sessions() as session:
        rows = {
            str(r.account_id): r.value
            for r in await session.scalars(
                select(PlayerDocument).where(PlayerDocument.collection == "ratings")
            )
        }
    assert rows[ann["player"]["id"]] == {"rating": 1516.0, "games": 1}
    assert rows[bob["player"]["id"]] == {"rating": 1484.0, "games": 1}
    own = await world.client.get(f"/v1/matches/{match_id}", headers=bearer(ann["access_token"]))
    assert own.json()["result"]["ranks"] == ranks
    stranger = await world.player()
    hidden = await world.client.get(
        f"/v1/matches/{match_id}", headers=bearer(stranger["access_token"])
    )
    assert problem_type(hidden) == "match-not-found"


async def test_a_long_poll_answers_when_the_ticket_is_allocated(world: World) -> None:
    await world.servers(1)
    ann, bob = await world.player(), await world.player()
    tickets = [(await world.ticket(p)).json() for p in (ann, bob)]

    async def later() -> None:
        await asyncio.sleep(0.5)
        await world.run_pass()

    started = asyncio.get_running_loop().time()
    passing = asyncio.create_task(later())
    polled = await world.read(ann, tickets[0]["id"], wait=20)
    await passing
    assert polled["state"] == "allocated"
    assert asyncio.get_running_loop().time() - started < 10
    quick = await world.read(bob, tickets[1]["id"], wait=20)
    assert quick["state"] == "allocated", "an ended ticket answers at once"


async def test_queues_are_listed(world: World, client: httpx.AsyncClient) -> None:
    ann = await world.player()
    await world.ticket(ann)
    listed = await client.get("/v1/matchmaking/queues", headers=bearer(ann["access_token"]))
    queues = {q["name"]: q for q in listed.json()["queues"]}
    assert queues["duel"]["searching"] == 1
    assert queues["duel"]["spec"] is None


class _Died(BaseException):
    """The leader's process ending abruptly in the middle of a pass."""


@pytest.mark.parametrize("dies", ["before allocating", "after allocating"])
async def test_a_match_left_by_a_dead_leader_is_finished_by_the_next(
    world: World, monkeypatch: pytest.MonkeyPatch, dies: str
) -> None:
    """A leader that claimed a match's tickets and died before settling it leaves the match
    allocating and its tickets matched; the next leader's pass finishes it — with the server
    the fleet had already allocated to that match, if any, and no second one."""
    servers = dict(await world.servers(2))
    ann, bob = await world.player(), await world.player()
    tickets = [(await world.ticket(p)).json() for p in (ann, bob)]
    real = allocation.allocate

    async def dying(*args: Any, **kwargs: Any) -> allocation.Allocated:
        if dies == "after allocating":
            await real(*args, **kwargs)
        raise _Died

    monkeypatch.setattr(allocation, "allocate", dying)
    with pytest.raises(_Died):
        await world.run_pass()
    stuck = [await world.read(p, t["id"]) for p, t in zip((ann, bob), tickets, strict=True)]
    assert {t["state"] for t in stuck} == {"matched"}
    async with world.state.sessions() as session:
        given = [s.id for s in await session.scalars(select(GameServer)) if s.allocation]
    assert len(given) == (1 if dies == "after allocating" else 0)

    monkeypatch.setattr(allocation, "allocate", real)
    successor = Matchmaker(world.state.settings, world.state.clock, world.state.sessions)
    report = await successor.run_pass()
    assert (report.recovered, report.allocated) == (1, 1)
    seen = [await world.read(p, t["id"]) for p, t in zip((ann, bob), tickets, strict=True)]
    assert {t["state"] for t in seen} == {"allocated"}
    assert {t["match_id"] for t in seen} == {stuck[0]["match_id"]}
    assert seen[0]["server"]["id"] in servers
    async with world.state.sessions() as session:
        allocated = [s.id for s in await session.scalars(select(GameServer)) if s.allocation]
    assert len(allocated) == 1, "one server for the match, never two"
    if dies == "after allocating":
        assert allocated == given
    assert (await successor.run_pass()).recovered == 0
