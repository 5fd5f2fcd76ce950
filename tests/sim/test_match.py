"""When the reference server's match is over, including when its allocation arrives late."""

from __future__ import annotations

import asyncio

from homeport.sim.match import Match


async def test_players_who_came_and_went_before_the_allocation_end_the_match() -> None:
    stopped: list[str] = []
    match = Match(0.05, stopped.append)
    match.joined("p1")
    match.left(0)  # before the allocation: nothing to end yet
    match.allocate({"allocation_id": "a", "players": ["p1", "p2"]}, players=0)
    await asyncio.sleep(0.1)
    assert stopped == ["match over"]


async def test_an_allocation_before_its_players_waits_for_them() -> None:
    stopped: list[str] = []
    match = Match(0.05, stopped.append)
    match.allocate({"allocation_id": "a", "players": ["p1"]}, players=0)
    await asyncio.sleep(0.1)
    assert stopped == []
    match.joined("p1")
    match.left(0)
    await asyncio.sleep(0.1)
    assert stopped == ["match over"]


async def test_a_stranger_who_left_does_not_end_a_match_not_yet_played() -> None:
    stopped: list[str] = []
    match = Match(0.05, stopped.append)
    match.joined("browser-player")
    match.left(0)
    match.allocate({"allocation_id": "a", "players": ["p1"]}, players=0)
    await asyncio.sleep(0.1)
    assert stopped == []
    match.cancel()
