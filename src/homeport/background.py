"""Loops that keep shared state tidy. Each runs in one process at a time (the leader), however
many workers and replicas share the database, and moves to another within a few seconds of
the leader's death (see `homeport.leader`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from homeport.dashboard import samples as dashboard_samples
from homeport.db.session import unit_of_work
from homeport.events import bus
from homeport.leader import LeaderLoop, Leadership
from homeport.matchmaking import queue_admin
from homeport.matchmaking.passes import Matchmaker
from homeport.players import documents, inventory
from homeport.registry.service import PURGE_BATCH, purge_expired
from homeport.state import AppState
from homeport.worlds import gc as worlds_gc

log = logging.getLogger("homeport.background")


def _registry_purge(state: AppState) -> Callable[[], Awaitable[None]]:
    async def work() -> None:
        while True:
            async with unit_of_work(state.sessions) as session:
                purged = await purge_expired(session, state.clock)
            if purged:
                log.info("purged %d servers whose lease ran out", purged)
            if purged < PURGE_BATCH:
                return

    return work


def _events_prune(state: AppState) -> Callable[[], Awaitable[None]]:
    async def work() -> None:
        async with unit_of_work(state.sessions) as session:
            await bus.prune(
                session, state.clock, older_than_seconds=state.settings.events_retention
            )

    return work


def _players_purge(state: AppState) -> Callable[[], Awaitable[None]]:
    """Idempotency keys and document tombstones that have been remembered long enough."""

    async def work() -> None:
        for purge, batch in (
            (inventory.purge_idempotency, inventory.PURGE_BATCH),
            (documents.purge_tombstones, documents.PURGE_BATCH),
        ):
            while True:
                async with unit_of_work(state.sessions) as session:
                    purged = await purge(session, state.clock, state.settings)
                if purged < batch:
                    break

    return work


def _matchmaking(state: AppState) -> Callable[[], Awaitable[None]]:
    matchmaker = Matchmaker(state.settings, state.clock, state.sessions)
    stored = False

    async def work() -> None:
        nonlocal stored
        if not stored:  # the queues of homeport.toml, in case the start could not store them
            await queue_admin.store_configured(state.sessions, state.clock, state.settings)
            stored = True
        report = await matchmaker.run_pass()
        if report.proposed or report.timed_out:
            log.info("matchmaking pass: %s", report)

    return work


async def _sample_stats(state: AppState) -> None:
    """A sample for the dashboard's charts, and the old ones dropped."""
    async with unit_of_work(state.sessions) as session:
        await dashboard_samples.take_sample(session, state.clock)
        await dashboard_samples.prune_samples(session, state.clock)


def leader_loops(state: AppState) -> list[LeaderLoop]:
    settings = state.settings
    check = settings.leader_check_interval
    return [
        LeaderLoop(
            Leadership(settings, "registry-purge"),
            interval=settings.registry_purge_interval,
            work=_registry_purge(state),
            check_interval=check,
            name="registry-purge",
        ),
        LeaderLoop(
            Leadership(settings, "events-prune"),
            interval=min(3600.0, settings.events_retention / 4),
            work=_events_prune(state),
            check_interval=check,
            name="events-prune",
        ),
        LeaderLoop(
            Leadership(settings, "players-purge"),
            interval=min(3600.0, settings.players_idempotency_ttl / 4),
            work=_players_purge(state),
            check_interval=check,
            name="players-purge",
        ),
        LeaderLoop(
            Leadership(settings, "matchmaking"),
            interval=settings.matchmaking_pass_interval,
            work=_matchmaking(state),
            check_interval=check,
            name="matchmaking",
        ),
        LeaderLoop(
            Leadership(settings, "worlds-gc"),
            interval=settings.worlds_gc_interval,
            work=lambda: _collect_worlds(state),
            check_interval=check,
            name="worlds-gc",
        ),
        LeaderLoop(
            Leadership(settings, "stats-samples"),
            interval=settings.dashboard_sample_interval,
            work=lambda: _sample_stats(state),
            check_interval=check,
            name="stats-samples",
        ),
    ]


async def _collect_worlds(state: AppState) -> None:
    await worlds_gc.collect(state.worlds)
