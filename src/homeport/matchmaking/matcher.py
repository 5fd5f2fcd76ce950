"""The matcher: which searching tickets of one queue play together, on which teams, where.

A pure function of the tickets and the queue's rules, so the matchmaking service can call it
once per pass inside its own transaction and the rules can be checked by property tests.

How it stays fast on a crowded queue (100,000 tickets in under a second on two small cores, see
bench/matchmaking.py): tickets are split by their must-be-equal key and, with a region rule, into
one pool per region; each pool is sorted by skill once. The longest-waiting unmatched ticket is
taken as an anchor and only its nearest neighbours in skill are considered (a bounded look-ahead,
widened a few times within a budget), so a pass is n log n for the sorts and linear after them.
Picking among those neighbours by wait is what makes old tickets go first; the anchor order makes
sure the oldest tickets get to pick.

A ticket takes part in the pool of its best region first. Whoever is left over then also joins
the pool of their second-best region, and so on: most players play where they play best, and a
player with a second acceptable region is not stranded when the first one is thin. Tickets
without latencies fit any region and sit in every pool.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from homeport.matchmaking.matcher_teams import Packer, arrange

SPAN = 1.0
"""How far either side of the anchor, in the skill-sorted pool, a match is first looked for, as
a multiple of `max_players`. Wider finds older tickets a little further off in skill, at a
proportional cost per match; half the pool at most is matched-but-not-yet-removed tickets, so
this always sees a few more than a match needs."""

WIDEN_BUDGET = 4
"""Tickets the wider looks may go through, per ticket in the pool."""


@dataclass(frozen=True, slots=True)
class Candidate:
    ticket_id: str
    players: tuple[str, ...]
    """The party, leader first; a party always plays on one team."""
    skill: float
    """The party's skill (e.g. its mean rating), worked out by the caller."""
    wait: float
    """Seconds this ticket has waited, at this pass."""
    latencies: Mapping[str, float]
    """Region to round-trip milliseconds; empty when any region will do."""
    key: tuple[str, ...] = ()
    """The values of the queue's must-be-equal properties (map, mode, version...)."""


@dataclass(frozen=True, slots=True)
class Rules:
    teams: int
    team_size: int
    min_players: int
    max_players: int
    fill_after: float = 30.0
    """A match short of `max_players` is made only once its longest-waiting ticket waited this
    long: a full match soon is better than a thin one now."""
    skill_initial: float | None = None
    """The skill window at wait 0; None for a queue without a skill rule."""
    skill_widen_per_s: float = 0.0
    skill_max: float = math.inf
    max_latency: float | None = None
    """Every player who named latencies is within this in the match's region; None: no rule."""

    def __post_init__(self) -> None:
        if self.teams < 1 or self.team_size < 1:
            raise ValueError("teams and team_size must be at least 1")
        if not 1 <= self.min_players <= self.max_players <= self.teams * self.team_size:
            raise ValueError("need 1 <= min_players <= max_players <= teams * team_size")


@dataclass(frozen=True, slots=True)
class Proposal:
    teams: tuple[tuple[str, ...], ...]
    """Ticket ids per team; a party is one ticket, so it is never split."""
    region: str | None
    """None when no ticket in the match named latencies."""
    players: int


def window(rules: Rules, wait: float) -> float:
    """How far apart in skill a ticket that has waited `wait` seconds accepts to play."""
    if rules.skill_initial is None:
        return math.inf
    return min(rules.skill_initial + rules.skill_widen_per_s * wait, rules.skill_max)


def propose(rules: Rules, candidates: Sequence[Candidate]) -> list[Proposal]:
    """Matches for as many of `candidates` as the rules allow, the longest-waiting first.

    Tickets that can never match are left out silently: a party larger than a team, and under a
    region rule a ticket with latencies but none within `max_latency`. A ticket id given twice
    counts once, so no ticket can end up in two proposals.
    """
    state = _Pass(rules, _admissible(rules, candidates))
    for by_region in state.groups().values():
        state.match_group(by_region)
    return state.proposals


def _admissible(rules: Rules, candidates: Sequence[Candidate]) -> list[Candidate]:
    if len({c.ticket_id for c in candidates}) < len(candidates):
        first: dict[str, Candidate] = {}
        for candidate in candidates:
            first.setdefault(candidate.ticket_id, candidate)
        candidates = list(first.values())
    # A party larger than a team, or than a whole match, can never play.
    largest = min(rules.team_size, rules.max_players)
    finite = math.isfinite
    sizes = [len(c.players) for c in candidates]
    sizes_fit = not sizes or (min(sizes) > 0 and max(sizes) <= largest)
    # A sum is finite only when every term is: two sums instead of a check per ticket.
    if not (
        sizes_fit
        and finite(sum(c.skill for c in candidates))
        and finite(sum(c.wait for c in candidates))
    ):
        candidates = [
            c
            for c in candidates
            if 0 < len(c.players) <= largest and finite(c.skill) and finite(c.wait)
        ]
    return list(candidates)


class _Pass:
    """One call's working state, in parallel lists indexed by admitted ticket (fast to read)."""

    def __init__(self, rules: Rules, tickets: list[Candidate]) -> None:
        self.rules = rules
        self.tickets = tickets
        self.ids = [t.ticket_id for t in tickets]
        self.latencies = [t.latencies for t in tickets]
        self.home: list[str | None] = [None] * len(tickets)
        """Each ticket's best region (set only under a region rule)."""
        self.skill = [t.skill for t in tickets]
        self.wait = [t.wait for t in tickets]
        if rules.skill_initial is None:
            self.window = [math.inf] * len(tickets)
        else:
            start, widen, most = rules.skill_initial, rules.skill_widen_per_s, rules.skill_max
            self.window = [min(start + widen * w, most) for w in self.wait]
        self.bottom = [s - w for s, w in zip(self.skill, self.window, strict=True)]
        """The lowest skill each ticket accepts; `top` the highest."""
        self.top = [s + w for s, w in zip(self.skill, self.window, strict=True)]
        self.size = [len(t.players) for t in tickets]
        self.used = [False] * len(tickets)
        self.proposals: list[Proposal] = []
        self.span = max(2, math.ceil(SPAN * rules.max_players))
        self.budget = 0
        """Tickets that wider looks may still go through in the current pool."""

    def regions(self, i: int) -> list[str]:
        """The regions ticket `i` accepts, best first (computed only for tickets left over)."""
        lat, cap = self.latencies[i], self.rules.max_latency
        assert cap is not None
        return sorted((r for r, ms in lat.items() if ms <= cap), key=lat.__getitem__)

    def groups(self) -> dict[tuple[str, ...], dict[str | None, list[int]]]:
        """Tickets by key, then by best region (None: no latencies, or no region rule)."""
        groups: dict[tuple[str, ...], dict[str | None, list[int]]] = {}
        if self.rules.max_latency is None:
            for i, ticket in enumerate(self.tickets):
                groups.setdefault(ticket.key, {None: []})[None].append(i)
            return groups
        cap = self.rules.max_latency
        for i, ticket in enumerate(self.tickets):
            lat = ticket.latencies
            best = min(lat, key=lat.__getitem__) if lat else None
            if best is not None and lat[best] > cap:
                continue  # no region within the cap: this ticket cannot play
            self.home[i] = best
            groups.setdefault(ticket.key, {}).setdefault(best, []).append(i)
        return groups

    def match_group(self, by_region: dict[str | None, list[int]]) -> None:
        """Match one key's tickets: per region with a region rule, else all together.

        Round 0 puts each ticket in its best region's pool; round n adds each ticket still
        unmatched to its n-th region's pool, where those left over from earlier rounds wait too.
        """
        latencies, used = self.latencies, self.used
        anywhere = by_region.get(None, [])
        fresh = {region: members for region, members in by_region.items() if region is not None}
        if not fresh:
            self.match_pool(anywhere)
            return
        named = [i for members in fresh.values() for i in members]
        pools: dict[str, list[int]] = {}
        depth = 0
        while fresh:
            for region in fresh:
                if region not in pools:
                    pools[region] = [i for i in anywhere if not used[i]]
            # Biggest pool first: it is the likeliest home for tickets that fit anywhere.
            for region in sorted(fresh, key=lambda r: (-len(fresh[r]) - len(pools[r]), r)):
                pool = [i for i in pools[region] if not used[i]]
                pool.extend(fresh[region])
                pools[region] = pool
                self.match_pool(pool)
            depth += 1
            named = [i for i in named if not used[i] and len(latencies[i]) > depth]
            fresh = {}
            for i in named:
                regions = self.regions(i)
                if depth < len(regions):
                    fresh.setdefault(regions[depth], []).append(i)

    def match_pool(self, pool: list[int]) -> None:
        """Anchor on each unmatched ticket, longest wait first, and try to build its match."""
        skill, used = self.skill, self.used
        waiting = [i for i in pool if not used[i]]
        self.budget = WIDEN_BUDGET * len(waiting)
        by_skill = sorted(waiting, key=skill.__getitem__)
        anchors = sorted(waiting, key=self.wait.__getitem__, reverse=True)
        at: dict[int, int] = {}
        gone = 0
        for anchor in anchors:
            if used[anchor]:
                continue
            if gone * 2 > len(by_skill):
                # Mostly matched: close the gaps so neighbour scans stay short.
                by_skill = [i for i in by_skill if not used[i]]
                at.clear()
                gone = 0
            if not at:
                at = {i: p for p, i in enumerate(by_skill)}
            matched = self.try_anchor(anchor, by_skill, at[anchor])
            gone += matched

    def try_anchor(self, anchor: int, by_skill: list[int], position: int) -> int:
        """Make the anchor's match if it can; how many tickets it took (0 when none).

        First among its nearest neighbours in the pool; when that fails and the anchor's window
        reaches further, among a wider stretch, for an old ticket whose partners are old too
        but not next to it (younger tickets in between are too narrow to play with it). Wider
        looks are paid from a budget proportional to the pool, so a pool where most anchors
        fail (say, only parties that cannot fill a match) still costs linear time.
        """
        span, end = self.span, len(by_skill)
        skill, reach = self.skill[anchor], self.window[anchor]
        while True:
            first, last = max(position - span, 0), min(position + span + 1, end)
            taken = self.try_stretch(anchor, by_skill[first:last])
            if taken:
                return taken
            reaches_on = (first > 0 and skill - self.skill[by_skill[first]] <= reach) or (
                last < end and self.skill[by_skill[last - 1]] - skill <= reach
            )
            span *= 4
            if not reaches_on or 2 * span > self.budget:
                return 0
            self.budget -= 2 * span

    def try_stretch(self, anchor: int, near: list[int]) -> int:
        """The anchor's match among `near`, oldest first; how many tickets it took (or 0).

        A set of tickets keeps the skill rule when its lowest skill is at least every member's
        `skill - window` (`floor` is the highest of those) and its highest skill at most every
        member's `skill + window` (`ceiling`), so each newcomer is checked in constant time.
        """
        rules = self.rules
        used, size, skill, bottom, top = self.used, self.size, self.skill, self.bottom, self.top
        # The anchor is marked taken meanwhile so that it skips itself.
        found = sorted(near, key=self.wait.__getitem__, reverse=True)
        used[anchor] = True
        packer = None
        if size[anchor] > 1:
            packer = Packer(rules.teams, rules.team_size)
            packer.add(size[anchor])
        chosen = [anchor]
        total, most = size[anchor], rules.max_players
        low = high = skill[anchor]
        floor, ceiling = bottom[anchor], top[anchor]
        if floor > low:
            found = []  # a negative window: this ticket can only play alone
        for other in found:
            party = size[other]
            if used[other] or total + party > most:
                continue
            at, under, over = skill[other], bottom[other], top[other]
            if at < low:
                if at < floor or under > at or over < high:
                    continue
            elif at > high:
                if at > ceiling or over < at or under > low:
                    continue
            elif under > low or over < high:
                continue
            if party > 1:
                if packer is None:
                    packer = Packer(rules.teams, rules.team_size)
                if not packer.add(party):
                    continue
            chosen.append(other)
            total += party
            low = at if at < low else low
            high = at if at > high else high
            floor = under if under > floor else floor
            ceiling = over if over < ceiling else ceiling
            if total == most:
                break
        else:
            short = total < most and max(map(self.wait.__getitem__, chosen)) < rules.fill_after
            if short or total < rules.min_players:
                used[anchor] = False
                return 0
        # The bounds above are one rounding away from the pairwise rule; check it as stated,
        # so that a proposal never breaks it by a last bit.
        win = self.window
        for i in chosen:
            if skill[i] - low > win[i] or high - skill[i] > win[i]:
                used[anchor] = False
                return 0
        self.emit(chosen, packer, total)
        return len(chosen)

    def emit(self, chosen: list[int], packer: Packer | None, total: int) -> None:
        rules = self.rules
        team_of = arrange(
            [self.size[i] for i in chosen],
            [self.skill[i] for i in chosen],
            rules.teams,
            rules.team_size,
            packer,
        )
        teams: list[list[str]] = [[] for _ in range(rules.teams)]
        ids, used = self.ids, self.used
        for i, team in zip(chosen, team_of, strict=True):
            teams[team].append(ids[i])
            used[i] = True
        home = self.home
        homes = {home[i] for i in chosen}
        homes.discard(None)
        if rules.max_latency is not None and len(homes) < 2:
            # No one named latencies, or all are best served by one region: it is also the
            # best for the match (lowest for each of them, so lowest worst and lowest mean).
            region = homes.pop() if homes else None
        else:
            region = best_region(rules, [self.latencies[i] for i in chosen])
        self.proposals.append(Proposal(tuple(map(tuple, teams)), region, total))


def best_region(rules: Rules, latencies: Sequence[Mapping[str, float]]) -> str | None:
    """The region with the lowest worst-case latency for the match, ties by the mean.

    Under a region rule only regions within `max_latency` for every ticket that named latencies
    count; the matcher only groups tickets that share one, so there always is one. Without the
    rule a ticket that did not name a region counts as infinitely far from it.
    """
    named = [lat for lat in latencies if lat]
    if not named:
        return None
    cap = rules.max_latency
    if cap is None:
        cap = math.inf
        options: Iterable[str] = {region for lat in named for region in lat}
    else:
        options = [region for region, ms in named[0].items() if ms <= cap]
    best: tuple[float, float, str] | None = None
    for region in options:
        values = [lat.get(region, math.inf) for lat in named]
        worst = max(values)
        # Equal counts of tickets, so the lower total is the lower mean.
        if worst <= cap and (best is None or (worst, sum(values), region) < best):
            best = (worst, sum(values), region)
    if best is None:
        raise AssertionError("tickets grouped without a region they all accept")
    return best[2]
