"""`python -m homeport.sim.server`: a reference dedicated server.

It behaves as a well-written headless Godot server with the Homeport addon should, and is
what the fleet starts in tests and the demo fleet's default command, so it doubles as the
protocol by example:

1. listen for players, then register (`POST /v1/servers`) and heartbeat every interval the
   registry names, with the players connected; register again when told `server-not-registered`;
2. admit a player only after `POST /v1/validate` vouches for their token, and spawn them from
   the documents that answer carries;
3. save a player's progress at the moments that matter (level up, leaving, periodically),
   naming the version each save replaces;
4. on SIGTERM, SIGINT, the stop file or a drain from the fleet, stop gracefully within the
   grace period: tell the players, save them all, deregister, exit 0 (1 if a player could not
   be saved in time, so whoever watches the exit knows data was lost).

The players speak the line protocol of `homeport.sim.protocol`; `homeport.sim.player` is its
client. Homeport trouble never crashes the server: it is logged and tried again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any

import httpx

from homeport.sim.agones_sdk import AgonesSdk
from homeport.sim.backend import Homeport, Problem, Unavailable, WorldCalls
from homeport.sim.config import Config, ConfigError, parse
from homeport.sim.match import Match
from homeport.sim.protocol import (
    COLLECTION,
    HELLO_TIMEOUT,
    KEY,
    MAX_LINE,
    MAX_XP_GAIN,
    Progress,
    compact_json,
    line,
    read_line,
)
from homeport.sim.registration import Registration
from homeport.sim.roster import Player, Saver
from homeport.sim.world import NO_WORLD, SimWorld

log = logging.getLogger("homeport.sim")
STOP_FILE_POLL = 0.25
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Denied(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class SimServer:
    """One game server's life; `run` it once. Shared state needs no locks beyond the save
    locks: it lives on one event loop, and changes only between awaits."""

    def __init__(self, config: Config, *, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config
        self.homeport = Homeport(config.url, config.key, transport=transport)
        self.saver = Saver(self.homeport, config.grace)
        self.port = config.port
        self.name = config.name or f"sim-{config.port}"
        self.registration = Registration(
            self.homeport,
            self._entry,
            self._beat,
            on_drain=self.request_stop,
            on_allocation=self._take_allocation,
            on_refused=self._refused,
            fleet_server_id=config.fleet_server_id,
        )
        self.players: dict[str, Player] = {}
        self.match = Match(config.linger, self.request_stop)
        self._stop = asyncio.Event()
        self._stopping = False
        self._failed = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._connections: set[asyncio.Task[Any]] = set()
        self._saves: set[asyncio.Task[bool]] = set()
        self.agones: AgonesSdk | None = None
        if config.agones_sdk_port is not None:
            self.agones = AgonesSdk(
                config.agones_sdk_port,
                on_allocated=self._take_allocation,
                on_shutdown=self.request_stop,
            )
        self.world: SimWorld | None = None
        if config.world:
            self.world = SimWorld(WorldCalls(self.homeport, config.world), config.world_backup)

    @property
    def state(self) -> str:
        return "in_match" if self.match.allocated else "ready"

    def request_stop(self, reason: str) -> None:
        """Begin the graceful stop; every later request (a second SIGTERM) changes nothing."""
        if self._stop.is_set():
            log.info("%s: already stopping", reason)
            return
        log.info("stop requested: %s", reason)
        self._stop.set()

    async def run(self) -> int:
        """Serve until asked to stop; 0 once every player was saved within the grace."""
        loop = asyncio.get_running_loop()
        config = self.config
        try:
            listener = await asyncio.start_server(
                self._connection, config.bind, config.port, limit=MAX_LINE
            )
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", config.bind, config.port, exc)
            await self.homeport.aclose()
            return 1
        if self.world is not None and not await self._load_world():
            listener.close()
            await self.homeport.aclose()
            return 1
        self.port = listener.sockets[0].getsockname()[1]
        self.name = config.name or f"sim-{self.port}"
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self.request_stop, signum.name)
        log.info("listening on %s:%d as %r", config.bind, self.port, self.name)
        if self.agones is not None:  # before registering: the address players are given
            await self.agones.learn_place()
        chores = [
            asyncio.create_task(self.registration.keep()),
            asyncio.create_task(self._watch_stop_file()),
            asyncio.create_task(self._periodic_saves()),
        ]
        if self.world:
            chores.append(asyncio.create_task(self.world.keep_saving(config.world_save_interval)))
        health = [] if not self.agones else self.agones.follow(chores, self.registration.registered)
        try:
            await self._stop.wait()
            for chore in chores:  # no heartbeat may re-register a server on its way out
                chore.cancel()
            await asyncio.gather(*chores, return_exceptions=True)
            code = await self._graceful_stop(listener)
            if self.agones is not None:  # health pings went on until here: Agones waits
                await self.agones.shutdown()
            return code
        finally:
            for chore in [*chores, *health]:
                chore.cancel()
            if self.agones is not None:
                await self.agones.aclose()
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)
            listener.close()
            await self.homeport.aclose()

    def _take_allocation(self, allocation: dict[str, Any]) -> None:
        """A match for this server, from a heartbeat or from Agones' GameServer watch."""
        self.match.allocate(allocation, len(self.players))

    def _entry(self) -> dict[str, Any]:
        config = self.config
        address, port = (self.agones.place if self.agones else None) or (config.address, self.port)
        return {
            "name": self.name,
            "port": port,
            "address": address,
            "map": config.map,
            "mode": config.mode,
            "region": config.region,
            "version": config.version,
            "max_players": config.max_players,
            "players": len(self.players),
            "state": self.state,
        }

    def _beat(self) -> dict[str, Any]:
        return {"players": len(self.players), "player_ids": list(self.players), "state": self.state}

    def _refused(self, reason: str) -> None:
        log.error("%s", reason)
        self._failed = True
        self.request_stop(reason)

    # Players: admit, play, leave.

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        player: Player | None = None
        try:
            player = await self._admit(reader, writer)
            if player is not None:
                await self._play(player, reader)
        except ConnectionError:
            pass
        except Exception:
            log.exception("connection failed")
        finally:
            self._connections.discard(task)
            if not (self._stopping and player is not None):  # else the stop closes it, later
                self._writers.discard(writer)
                writer.close()

    async def _admit(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Player | None:
        try:
            return await self._welcome(reader, writer)
        except _Denied as denied:
            log.info("denied %s: %s", writer.get_extra_info("peername"), denied.problem)
            if not writer.is_closing():
                writer.write(line("DENIED", denied.problem))
            return None

    async def _welcome(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Player | None:
        try:
            async with asyncio.timeout(HELLO_TIMEOUT):
                hello = await read_line(reader)
        except TimeoutError:
            raise _Denied("hello-timeout") from None
        if hello is None:
            return None
        command, _, token = hello.partition(" ")
        if command != "HELLO" or not token.strip():
            raise _Denied("hello-expected")
        self._check_room(None)
        try:
            answer = await self.homeport.validate(token.strip(), self.registration.server_id)
        except Problem as problem:
            raise _Denied(problem.slug) from None
        except Unavailable as exc:
            log.warning("validate failed: %s", exc)
            raise _Denied("homeport-unavailable") from None
        player_id = str(answer["player"]["id"])
        self._check_room(player_id)
        stored = (answer.get("data") or {}).get(COLLECTION, {}).get(KEY) or {}
        progress = Progress.from_value(stored.get("value"))
        player = Player(player_id, progress, int(stored.get("version", 0)), writer)
        progress.sessions += 1
        self.players[player_id] = player
        self.match.joined(player_id)
        log.info("welcome %s: %s", player_id, compact_json(progress.as_value()))
        player.send("WELCOME", player_id, compact_json(progress.as_value()))
        return player

    def _check_room(self, player_id: str | None) -> None:
        if self._stopping:
            raise _Denied("server-draining")
        if player_id in self.players:
            raise _Denied("already-connected")
        if len(self.players) >= self.config.max_players:
            raise _Denied("server-full")

    async def _play(self, player: Player, reader: asyncio.StreamReader) -> None:
        while (text := await read_line(reader)) is not None and not self._stopping:
            command, _, argument = text.partition(" ")
            if command == "XP":
                self._gain(player, argument)
            elif command in ("BUILD", "LOOK"):
                player.send(*(self.world.answer(command, argument) if self.world else NO_WORLD))
            elif command == "PING":
                player.send("PONG")
            elif command == "QUIT":
                await self._leave(player, "quit")
                player.send("BYE")
                return
            else:
                player.send("ERR", "unknown-command")
            await player.writer.drain()
        await self._leave(player, "disconnect")

    def _gain(self, player: Player, argument: str) -> None:
        amount = int(argument) if argument.isascii() and argument.isdigit() else 0
        if not 1 <= amount <= MAX_XP_GAIN:
            player.send("ERR", "invalid-xp")
            return
        leveled = player.progress.gain(amount)
        player.dirty = True
        player.send("OK", player.progress.xp, player.progress.level)
        if leveled:  # a key moment: save now, without holding up the game
            self._save_soon(player, f"level {player.progress.level}")

    async def _leave(self, player: Player, why: str) -> None:
        if self._stopping:  # the stop saves whoever was connected when it began
            return
        del self.players[player.id]
        log.info("%s left (%s)", player.id, why)
        self.match.left(len(self.players))
        await asyncio.shield(self._save_soon(player, why))

    # Saving and stopping.

    def _save_soon(self, player: Player, reason: str, **options: Any) -> asyncio.Task[bool]:
        """A save that runs on its own, so the stop can wait for every save in flight."""
        task = asyncio.create_task(self.saver.save(player, reason, **options))
        self._saves.add(task)
        task.add_done_callback(self._saves.discard)
        return task

    async def _periodic_saves(self) -> None:
        if not self.config.save_interval:
            return
        while True:
            await asyncio.sleep(self.config.save_interval)
            for player in list(self.players.values()):
                if player.dirty:
                    self._save_soon(player, "periodic", if_changed=True)

    async def _load_world(self) -> bool:
        assert self.world is not None
        try:
            source = await self.world.load()
        except (Unavailable, Problem) as exc:
            log.error("cannot load world %s: %s", self.config.world, exc)
            return False
        log.info("world %s loaded: %s", self.config.world, source)
        return True

    async def _watch_stop_file(self) -> None:
        path = self.config.stop_file
        if path is None:
            return
        while not path.exists():  # noqa: ASYNC110 - a file gives no event to wait for
            await asyncio.sleep(STOP_FILE_POLL)
        self.request_stop(f"stop file {path}")

    async def _graceful_stop(self, listener: asyncio.Server) -> int:
        loop = asyncio.get_running_loop()
        grace = self.config.grace
        deadline = loop.time() + grace
        self._stopping = True
        self.match.cancel()
        listener.close()
        leaving = list(self.players.values())
        log.info("stopping: %d players connected, %gs of grace", len(leaving), grace)
        for player in leaving:
            player.send("BYE", "draining")
        saved, finished, world_saved = 0, False, True
        try:
            async with asyncio.timeout_at(deadline):
                save_by = deadline - min(1.0, grace / 5)  # the rest is for deregistering
                stops = [self._save_soon(p, "stop", deadline=save_by) for p in leaving]
                results = await asyncio.gather(*stops, return_exceptions=True)
                saved = sum(result is True for result in results)
                while pending := {t for t in self._saves if not t.done()}:
                    await asyncio.wait(pending)  # players who left just before, level-ups
                for writer in list(self._writers):
                    writer.close()
                if self._connections:
                    await asyncio.wait(set(self._connections))
                world_saved = await self.world.finish() if self.world else True
                await self.registration.remove()
                finished = True
        except TimeoutError:
            log.error("the graceful stop ran past its %gs of grace", grace)
        lost = len(leaving) - saved
        log.info("stopped: saved %d players%s", saved, f", {lost} NOT saved" if lost else "")
        return 0 if finished and world_saved and not lost and not self._failed else 1


def _configure_logging(level: str) -> None:
    """One flushed line per event, on stderr: the fleet captures it to the server's log file."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers = [handler]
    log.setLevel(level.upper())
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse(argv, os.environ)
    except ConfigError as exc:
        print(f"homeport sim-server: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, or options argparse could not read (it said why)
        return exc.code if isinstance(exc.code, int) else 2
    _configure_logging(config.log_level)
    return asyncio.run(SimServer(config).run())


if __name__ == "__main__":
    sys.exit(main())
