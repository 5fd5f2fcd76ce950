"""The matcher: one pass over a crowded queue, and a queue living under steady arrivals.

The matchmaking service runs one matcher pass per queue every second or so, inside the
transaction that claims the tickets, so a pass must stay short even when a launch-day queue
holds 100,000 searching tickets. Target: one pass over 100,000 tickets in under 1 s.

- pass: `propose` over N searching tickets (default 100,000) from a fixed seed: skill normal
  around 1,500 (sd 500, clipped to 0-3,000), parties of 1 (80 %), 2 (13 %) or 3 (7 %) players,
  1-3 of 3 regions each with a latency of 20-200 ms, one of 2 keys (maps), waits 0-60 s; the
  queue is 2 teams of 5, skill window 100 widening by 10/s up to 1,000, latency cap 150 ms.
  Timed over several repetitions (min, median, max), in this process, on the CPU only.
- simulation: tickets arrive at a steady rate (default 200/s, at random moments in each
  second) with the same make-up, a pass runs every simulated second over the tickets still
  searching, a ticket leaves unmatched after the queue's ticket timeout (120 s). Simulated
  time: nothing sleeps. Prints time to match (p50/p95/p99), the share matched, how far apart
  the two teams' average skills are, and how long the passes took.

    python bench/matchmaking.py
    python bench/matchmaking.py --tickets 20000 --repeats 3 --rate 50 --minutes 2

The PASS/MISS line is informational. The exit status is 1 only when a proposal puts a ticket
in two matches.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from homeport.matchmaking.matcher import Candidate, Proposal, Rules, propose

TARGET_PASS_S = 1.0
MAX_LATENCY = 150.0
REGIONS = ("eu-west", "us-east", "ap-south")
KEYS = (("map-a",), ("map-b",))
PARTY_SIZES = (1, 2, 3)
PARTY_WEIGHTS = (80, 13, 7)


@dataclass(frozen=True, slots=True)
class Ticket:
    """A searching ticket as the simulation keeps it: arrival time instead of wait."""

    id: str
    players: tuple[str, ...]
    skill: float
    latencies: dict[str, float]
    key: tuple[str, ...]
    arrived: float

    def candidate(self, now: float) -> Candidate:
        return Candidate(
            self.id, self.players, self.skill, now - self.arrived, self.latencies, self.key
        )


def queue_rules(min_players: int) -> Rules:
    return Rules(
        teams=2,
        team_size=5,
        min_players=min_players,
        max_players=10,
        fill_after=30.0,
        skill_initial=100.0,
        skill_widen_per_s=10.0,
        skill_max=1000.0,
        max_latency=MAX_LATENCY,
    )


def new_ticket(rng: random.Random, number: int, arrived: float) -> Ticket:
    size = rng.choices(PARTY_SIZES, PARTY_WEIGHTS)[0]
    regions = rng.sample(REGIONS, rng.randint(1, len(REGIONS)))
    return Ticket(
        id=f"t{number}",
        players=tuple(f"p{number}.{k}" for k in range(size)),
        skill=min(3000.0, max(0.0, rng.gauss(1500.0, 500.0))),
        latencies={region: rng.uniform(20.0, 200.0) for region in regions},
        key=rng.choice(KEYS),
        arrived=arrived,
    )


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def ticket_ids(proposals: list[Proposal]) -> list[str]:
    return [ticket for p in proposals for team in p.teams for ticket in team]


def bench_pass(args: argparse.Namespace, rules: Rules) -> tuple[float, bool]:
    """The median seconds of one pass, and whether every pass kept tickets apart."""
    rng = random.Random(args.seed)
    now = 60.0
    tickets = [new_ticket(rng, n, now - rng.uniform(0, 60)) for n in range(args.tickets)]
    candidates = [t.candidate(now) for t in tickets]
    players = sum(len(t.players) for t in tickets)
    playable = sum(len(t.players) for t in tickets if min(t.latencies.values()) <= MAX_LATENCY)
    timings = []
    proposals: list[Proposal] = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        proposals = propose(rules, candidates)
        timings.append(time.perf_counter() - started)
    ids = ticket_ids(proposals)
    matched = sum(p.players for p in proposals)
    median = statistics.median(timings)
    print(
        f"  pass over {args.tickets:,} tickets ({players:,} players), {args.repeats} runs:"
        f"  min {min(timings):.3f} s  median {median:.3f} s  max {max(timings):.3f} s"
    )
    print(
        f"  {len(proposals):,} matches, {matched:,} players matched ({matched / players:.1%};"
        f" {matched / playable:.1%} of the {playable:,} with a region within the cap)"
    )
    return median, len(ids) == len(set(ids))


@dataclass
class Outcome:
    waits: list[float]
    """Seconds from arrival to the pass that matched it, per matched ticket."""
    gaps: list[float]
    """Per match: strongest minus weakest team's average skill (players weighted)."""
    spreads: list[float]
    """Per match: highest minus lowest party skill."""
    pass_seconds: list[float]
    pass_tickets: list[int]
    arrived: int = 0
    playable: int = 0
    """Arrived with at least one region within the latency cap (the others can never play)."""
    timed_out: int = 0
    searching: int = 0
    duplicated: bool = False


def simulate(args: argparse.Namespace, rules: Rules) -> Outcome:
    rng = random.Random(args.seed + 1)
    outcome = Outcome([], [], [], [], [])
    searching: dict[str, Ticket] = {}
    seconds = int(args.minutes * 60)
    number = 0
    for second in range(1, seconds + 1):
        now = float(second)
        for _ in range(args.rate):
            ticket = searching[f"t{number}"] = new_ticket(rng, number, now - rng.random())
            outcome.playable += min(ticket.latencies.values()) <= MAX_LATENCY
            number += 1
        for ticket in [t for t in searching.values() if now - t.arrived > args.timeout]:
            del searching[ticket.id]
            outcome.timed_out += 1
        candidates = [t.candidate(now) for t in searching.values()]
        started = time.perf_counter()
        proposals = propose(rules, candidates)
        outcome.pass_seconds.append(time.perf_counter() - started)
        outcome.pass_tickets.append(len(candidates))
        ids = ticket_ids(proposals)
        outcome.duplicated |= len(ids) != len(set(ids))
        for proposal in proposals:
            averages = []
            skills = []
            for team in proposal.teams:
                members = [searching[t] for t in team]
                if members:
                    total = sum(len(m.players) * m.skill for m in members)
                    averages.append(total / sum(len(m.players) for m in members))
                    skills += [m.skill for m in members]
            outcome.gaps.append(max(averages) - min(averages))
            outcome.spreads.append(max(skills) - min(skills))
        for ticket_id in ids:
            outcome.waits.append(now - searching.pop(ticket_id).arrived)
    outcome.arrived = number
    outcome.searching = len(searching)
    return outcome


def report_simulation(args: argparse.Namespace, outcome: Outcome) -> None:
    matched = len(outcome.waits)
    print(
        f"  arrived {outcome.arrived:,} ({outcome.playable:,} with a region within the cap)"
        f"  matched {matched:,} ({matched / max(outcome.arrived, 1):.1%} of all,"
        f" {matched / max(outcome.playable, 1):.1%} of those)"
    )
    print(f"  timed out {outcome.timed_out:,}  still searching at the end {outcome.searching:,}")
    print(
        "  time to match: "
        + "  ".join(
            f"p{round(share * 100)} {percentile(outcome.waits, share):.1f} s"
            for share in (0.5, 0.95, 0.99)
        )
    )
    print(
        f"  team-average skill difference: mean {statistics.fmean(outcome.gaps or [0]):.1f}"
        f"  p95 {percentile(outcome.gaps, 0.95):.1f}"
        f";  skill spread in a match: mean {statistics.fmean(outcome.spreads or [0]):.0f}"
    )
    seconds = outcome.pass_seconds
    print(
        f"  pass time: mean {statistics.fmean(seconds) * 1000:.1f} ms"
        f"  max {max(seconds) * 1000:.1f} ms  ({len(seconds)} passes over"
        f" {statistics.fmean(outcome.pass_tickets):,.0f} tickets on average,"
        f" {max(outcome.pass_tickets):,} at most)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, default=100_000, help="tickets in the timed pass")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes")
    parser.add_argument("--rate", type=int, default=200, help="simulated arrivals per second")
    parser.add_argument("--minutes", type=float, default=5.0, help="simulated minutes")
    parser.add_argument("--timeout", type=float, default=120.0, help="ticket timeout, seconds")
    parser.add_argument("--min-players", type=int, default=10, help="fewest players in a match")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-pass", action="store_true", help="only the simulation")
    parser.add_argument("--skip-simulation", action="store_true", help="only the timed pass")
    args = parser.parse_args(argv)
    if args.tickets < 1 or args.repeats < 1 or args.rate < 1 or args.minutes <= 0:
        parser.error("--tickets, --repeats, --rate and --minutes must be positive")
    if not 1 <= args.min_players <= 10:
        parser.error("--min-players must be between 1 and 10")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rules = queue_rules(args.min_players)
    print(
        f"matchmaking: 2x5, min_players={rules.min_players}, skill window 100 +10/s up to 1000,"
        f" {len(REGIONS)} regions capped at 150 ms, {len(KEYS)} keys, cores={os.cpu_count()}",
        flush=True,
    )
    clean = True
    median = None
    if not args.skip_pass:
        median, clean = bench_pass(args, rules)
    if not args.skip_simulation:
        print(
            f"  simulation: {args.rate} tickets/s for {args.minutes:g} simulated minutes,"
            f" a pass every second, timeout {args.timeout:g} s",
            flush=True,
        )
        outcome = simulate(args, rules)
        report_simulation(args, outcome)
        clean = clean and not outcome.duplicated
    if median is not None:
        verdict = "PASS" if median < TARGET_PASS_S else "MISS"
        print()
        print(f"target: one pass over {args.tickets:,} tickets < {TARGET_PASS_S:.0f} s")
        print(f"  {verdict}  median {median:.3f} s")
    if not clean:
        print("a ticket was proposed for two matches", file=sys.stderr)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
