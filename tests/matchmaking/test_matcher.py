"""The matcher's rules, checked against generated queues and tickets; its quality on examples."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeport.matchmaking.matcher import Candidate, Proposal, Rules, propose, window

REGIONS = ("eu", "us", "asia")


@st.composite
def rule_sets(draw: st.DrawFn) -> Rules:
    teams = draw(st.integers(1, 3))
    team_size = draw(st.integers(1, 6))
    max_players = draw(st.integers(1, teams * team_size))
    skill_initial = draw(st.none() | st.sampled_from([0.0, 25.0, 100.0]))
    return Rules(
        teams=teams,
        team_size=team_size,
        min_players=draw(st.integers(1, max_players)),
        max_players=max_players,
        fill_after=draw(st.sampled_from([0.0, 20.0, 30.0, math.inf])),
        skill_initial=skill_initial,
        skill_widen_per_s=draw(st.sampled_from([0.0, 2.5, 10.0])),
        skill_max=draw(st.sampled_from([60.0, 400.0, math.inf])),
        max_latency=draw(st.none() | st.sampled_from([60.0, 120.0])),
    )


@st.composite
def candidates(draw: st.DrawFn) -> Candidate:
    size = draw(st.integers(1, 6) if draw(st.booleans()) else st.just(1))
    latencies = draw(
        st.just({})
        | st.dictionaries(st.sampled_from(REGIONS), st.floats(10, 150).map(round), max_size=3)
    )
    ticket = draw(st.integers(0, 60))  # small: the same id sometimes comes twice
    return Candidate(
        ticket_id=f"t{ticket}",
        players=tuple(f"p{ticket}.{n}" for n in range(size)),
        skill=draw(st.floats(0, 300) | st.sampled_from([0.0, 100.0, 100.5])),
        wait=draw(st.floats(0, 60)),
        latencies=latencies,
        key=draw(st.sampled_from([(), ("x",), ("y",)])),
    )


def worst_and_total(lats: Sequence[Mapping[str, float]], region: str) -> tuple[float, float]:
    values = [lat.get(region, math.inf) for lat in lats]
    return max(values), sum(values)


def check(rules: Rules, given_: Sequence[Candidate], made: list[Proposal]) -> None:
    """Every rule a proposal must keep, whatever the queue and the tickets."""
    first: dict[str, Candidate] = {}
    for candidate in given_:
        first.setdefault(candidate.ticket_id, candidate)  # a repeated id counts once: the first
    ids = [t for p in made for team in p.teams for t in team]
    assert len(ids) == len(set(ids)), "a ticket in two places"
    assert set(ids) <= set(first)
    for proposal in made:
        assert len(proposal.teams) == rules.teams
        tickets = [first[t] for team in proposal.teams for t in team]
        loads = [sum(len(first[t].players) for t in team) for team in proposal.teams]
        assert all(load <= rules.team_size for load in loads)
        assert proposal.players == sum(loads)
        assert rules.min_players <= proposal.players <= rules.max_players
        if proposal.players < rules.max_players:
            assert max(t.wait for t in tickets) >= rules.fill_after
        # Sizes even: no party could move to a smaller team and narrow the gap.
        for team, load in zip(proposal.teams, loads, strict=True):
            for other in loads:
                assert all(len(first[t].players) >= load - other for t in team)
        for a in tickets:
            assert a.key == tickets[0].key
            for b in tickets:
                limit = min(window(rules, a.wait), window(rules, b.wait))
                assert abs(a.skill - b.skill) <= limit
        named = [t.latencies for t in tickets if t.latencies]
        if not named:
            assert proposal.region is None
            continue
        assert proposal.region is not None
        cap = math.inf if rules.max_latency is None else rules.max_latency
        options = {r for lat in named for r in lat} if cap == math.inf else set(REGIONS)
        scores = {r: worst_and_total(named, r) for r in options}
        if cap != math.inf:
            scores = {r: s for r, s in scores.items() if s[0] <= cap}
        assert proposal.region in scores
        assert scores[proposal.region] == min(scores.values())


@settings(max_examples=200, deadline=None)
@given(rule_sets(), st.lists(candidates(), max_size=40))
def test_proposals_keep_the_rules(rules: Rules, given_: list[Candidate]) -> None:
    check(rules, given_, propose(rules, given_))


def crowd(rng: random.Random, count: int) -> list[Candidate]:
    """Many tickets, quickly: from a seeded generator (a hypothesis draw per number is slow)."""
    crowd = []
    for n in range(rng.randrange(count)):
        size = rng.choice((1, 1, 1, 2, 3, 6))
        regions = rng.sample(REGIONS, rng.randrange(len(REGIONS) + 1))
        crowd.append(
            Candidate(
                ticket_id=f"t{rng.randrange(count) if rng.random() < 0.05 else n}",
                players=tuple(f"p{n}.{k}" for k in range(size)),
                skill=round(rng.gauss(150, 60), rng.choice((0, 3))),
                wait=rng.uniform(0, 60),
                latencies={region: rng.randrange(10, 150) for region in regions},
                key=rng.choice(((), ("x",))),
            )
        )
    return crowd


@settings(max_examples=300, deadline=None)
@given(rule_sets(), st.integers(0, 2**32))
def test_crowded_queues_keep_the_rules(rules: Rules, seed: int) -> None:
    given_ = crowd(random.Random(seed), 400)
    check(rules, given_, propose(rules, given_))


@settings(max_examples=150, deadline=None)
@given(rule_sets(), st.integers(0, 60), st.floats(0, 60))
def test_alike_solos_fill_every_match_they_can(rules: Rules, count: int, wait: float) -> None:
    solos = [solo(f"t{n}", 1000.0, wait) for n in range(count)]
    made = propose(rules, solos)
    check(rules, solos, made)
    full, left = divmod(count, rules.max_players)
    assert sum(p.players == rules.max_players for p in made) == full
    if rules.min_players <= left and wait >= rules.fill_after:
        assert len(made) == full + 1
    else:
        assert len(made) == full


@given(rule_sets(), st.floats(-100, 1000))
def test_window_widens_with_wait_up_to_its_cap(rules: Rules, wait: float) -> None:
    got = window(rules, wait)
    if rules.skill_initial is None:
        assert got == math.inf
    else:
        assert got <= rules.skill_max
        assert got == min(rules.skill_initial + rules.skill_widen_per_s * wait, rules.skill_max)


def solo(
    ticket: str,
    skill: float,
    wait: float = 0.0,
    latencies: Mapping[str, float] | None = None,
    key: tuple[str, ...] = (),
    size: int = 1,
) -> Candidate:
    players = tuple(f"{ticket}.{n}" for n in range(size))
    return Candidate(ticket, players, skill, wait, latencies or {}, key)


FIVES = Rules(teams=2, team_size=5, min_players=10, max_players=10, skill_initial=100)


def team_averages(proposal: Proposal, by_id: Mapping[str, Candidate]) -> list[float]:
    averages = []
    for team in proposal.teams:
        players = sum(len(by_id[t].players) for t in team)
        total = sum(len(by_id[t].players) * by_id[t].skill for t in team)
        averages.append(total / players)
    return averages


def test_forty_solos_make_four_matches() -> None:
    solos = [solo(f"t{n}", 1500 + n % 7, wait=n % 5) for n in range(40)]
    made = propose(FIVES, solos)
    assert len(made) == 4
    assert {t for p in made for team in p.teams for t in team} == {s.ticket_id for s in solos}
    assert all(sorted(map(len, p.teams)) == [5, 5] for p in made)


def test_a_party_plays_on_one_team() -> None:
    party = solo("party", 1500, size=3)
    made = propose(FIVES, [party, *(solo(f"s{n}", 1500 + n) for n in range(7))])
    assert len(made) == 1
    (proposal,) = made
    team = next(team for team in proposal.teams if "party" in team)
    assert len(team) == 3  # the party of three and two solos: five players
    assert proposal.players == 10


def test_parties_that_fit_only_one_way() -> None:
    sixes = Rules(teams=2, team_size=6, min_players=12, max_players=12)
    tickets = [
        solo(name, 1500, size=size) for name, size in zip("abcde", (3, 3, 2, 2, 2), strict=True)
    ]
    (proposal,) = propose(sixes, tickets)
    # Dealt out largest first, the third pair finds no room: only {a, b} and {c, d, e} fit.
    assert sorted(map(sorted, proposal.teams)) == [["a", "b"], ["c", "d", "e"]]


def test_oldest_tickets_go_first() -> None:
    solos = [solo(f"t{n}", 1500, wait=float(n)) for n in range(12)]
    (proposal,) = propose(FIVES, solos)
    assert {t for team in proposal.teams for t in team} == {f"t{n}" for n in range(2, 12)}


def test_teams_are_balanced_by_skill() -> None:
    solos = [solo(f"t{n}", 100.0 * n) for n in range(1, 11)]
    wide = Rules(teams=2, team_size=5, min_players=10, max_players=10)
    (proposal,) = propose(wide, solos)
    strong, weak = sorted(team_averages(proposal, {s.ticket_id: s for s in solos}), reverse=True)
    assert strong - weak <= 20.0  # 2,800 against 2,700: the sums cannot be nearer


def test_a_swap_improves_on_the_draft() -> None:
    skills = (1800, 1000, 800, 700, 300, 0)
    solos = [solo(f"t{skill}", skill) for skill in skills]
    threes = Rules(teams=2, team_size=3, min_players=6, max_players=6)
    (proposal,) = propose(threes, solos)
    strong, weak = sorted(team_averages(proposal, {s.ticket_id: s for s in solos}), reverse=True)
    # Dealt in turn: 2800 against 1800. The best split: 2500 against 2100.
    assert strong - weak == pytest.approx(400 / 3)


def test_parties_are_balanced_too() -> None:
    tickets = [solo("a", 2000, size=3), solo("b", 1000, size=3)]
    tickets += [solo("c", 1600, size=2), solo("d", 1400, size=2)]
    wide = Rules(teams=2, team_size=5, min_players=10, max_players=10)
    (proposal,) = propose(wide, tickets)
    # {a, d} against {b, c}: 1760 and 1240; {a, c} against {b, d} would be 1840 and 1160.
    assert sorted(map(sorted, proposal.teams)) == [["a", "d"], ["b", "c"]]


def test_skill_windows_widen_until_a_far_pair_matches() -> None:
    duel = Rules(
        teams=2,
        team_size=1,
        min_players=2,
        max_players=2,
        skill_initial=100,
        skill_widen_per_s=10,
        skill_max=1000,
    )
    assert propose(duel, [solo("a", 1000, wait=5), solo("b", 1300, wait=20)]) == []
    made = propose(duel, [solo("a", 1000, wait=20), solo("b", 1300, wait=25)])
    assert [sorted(t for team in p.teams for t in team) for p in made] == [["a", "b"]]


def test_region_with_the_best_worst_case_wins() -> None:
    regional = Rules(teams=2, team_size=1, min_players=2, max_players=2, max_latency=150)
    a = solo("a", 1000, latencies={"eu": 40, "us": 70, "asia": 149})
    b = solo("b", 1000, latencies={"eu": 90, "us": 75, "asia": 10})
    (proposal,) = propose(regional, [a, b])
    assert proposal.region == "us"  # worst 75, against eu's 90 and asia's 149


def test_region_ties_go_to_the_lower_mean() -> None:
    regional = Rules(teams=2, team_size=1, min_players=2, max_players=2, max_latency=150)
    a = solo("a", 1000, latencies={"eu": 80, "us": 20})
    b = solo("b", 1000, latencies={"eu": 80, "us": 80})
    (proposal,) = propose(regional, [a, b])
    assert proposal.region == "us"


def test_players_far_from_every_shared_region_do_not_meet() -> None:
    regional = Rules(teams=2, team_size=1, min_players=2, max_players=2, max_latency=100)
    made = propose(
        regional,
        [
            solo("a", 1000, latencies={"eu": 30, "us": 140}),
            solo("b", 1000, latencies={"eu": 120, "us": 40}),
            solo("c", 1000, latencies={"asia": 101}),
            solo("d", 1000, latencies={}),
        ],
    )
    assert [sorted(t for team in p.teams for t in team) for p in made] == [["a", "d"]]
    assert made[0].region == "eu"


def test_a_second_region_rescues_a_player_alone_in_the_first() -> None:
    regional = Rules(teams=2, team_size=1, min_players=2, max_players=2, max_latency=100)
    a = solo("a", 1000, latencies={"eu": 30, "us": 90})
    b = solo("b", 1000, latencies={"us": 50})
    (proposal,) = propose(regional, [a, b])
    assert proposal.region == "us"


def test_no_latencies_no_region() -> None:
    (proposal,) = propose(FIVES, [solo(f"t{n}", 1500) for n in range(10)])
    assert proposal.region is None


def test_short_matches_wait_for_fill_after() -> None:
    flexible = Rules(teams=2, team_size=5, min_players=4, max_players=10, fill_after=30)
    young = [solo(f"t{n}", 1500, wait=10) for n in range(6)]
    assert propose(flexible, young) == []
    (proposal,) = propose(flexible, [*young[1:], solo("t0", 1500, wait=31)])
    assert proposal.players == 6
    assert sorted(map(len, proposal.teams)) == [3, 3]


def test_keys_keep_tickets_apart() -> None:
    tickets = [solo(f"t{n}", 1500, key=("map-a" if n % 2 else "map-b",)) for n in range(10)]
    assert propose(FIVES, tickets) == []
    made = propose(FIVES, [*tickets, *(solo(f"u{n}", 1500, key=("map-a",)) for n in range(5))])
    assert len(made) == 1


def test_a_party_larger_than_a_team_is_never_matched() -> None:
    tickets = [solo("big", 1500, size=6), *(solo(f"t{n}", 1500) for n in range(10))]
    (proposal,) = propose(FIVES, tickets)
    assert "big" not in {t for team in proposal.teams for t in team}


def test_free_for_all() -> None:
    brawl = Rules(teams=8, team_size=1, min_players=8, max_players=8)
    (proposal,) = propose(brawl, [solo(f"t{n}", 1500 + n) for n in range(9)])
    assert sorted(map(len, proposal.teams)) == [1] * 8


@pytest.mark.parametrize(
    ("teams", "team_size", "least", "most"),
    [(0, 5, 1, 1), (2, 0, 1, 1), (2, 5, 0, 10), (2, 5, 6, 5), (2, 5, 10, 11)],
)
def test_impossible_rules_are_refused(teams: int, team_size: int, least: int, most: int) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        Rules(teams=teams, team_size=team_size, min_players=least, max_players=most)
