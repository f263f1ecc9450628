"""The pure routing decision: no servers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.errors import Backpressure, NoLiveEngine, UnknownCapability
from agents.routing.decision import BreakerState, Candidate, decide, explore, score


def candidate(name: str, **overrides: object) -> Candidate:
    values: dict[str, object] = {
        "engine": name,
        "capabilities": frozenset({"analysis"}),
        "queue_size": 100,
        "live_workers": 1,
    }
    values.update(overrides)
    return Candidate(**values)  # type: ignore[arg-type]


def test_unknown_capability_names_the_capability() -> None:
    with pytest.raises(UnknownCapability, match="'vision'"):
        decide("vision", [candidate("a")])


def test_known_capability_without_live_worker_is_no_live_engine() -> None:
    with pytest.raises(NoLiveEngine, match="no live worker for engine.*a"):
        decide("analysis", [candidate("a", live_workers=0)])


def test_all_breakers_open_is_no_live_engine() -> None:
    with pytest.raises(NoLiveEngine, match="circuit breaker open"):
        decide("analysis", [candidate("a", breaker=BreakerState.OPEN)])


def test_every_queue_full_is_backpressure() -> None:
    with pytest.raises(Backpressure, match="a 100/100"):
        decide("analysis", [candidate("a", depth=100), candidate("b", breaker=BreakerState.OPEN)])


def test_prefers_emptier_queue() -> None:
    decision = decide("analysis", [candidate("busy", depth=90), candidate("idle", depth=0)])
    assert decision.engine == "idle"
    assert decision.queue == "idle"


def test_prefers_higher_success_rate() -> None:
    decision = decide("analysis", [candidate("bad", success_rate=0.2), candidate("good", success_rate=1.0)])
    assert decision.engine == "good"


def test_prefers_lower_latency() -> None:
    decision = decide("analysis", [candidate("slow", latency_ms=5000), candidate("fast", latency_ms=5)])
    assert decision.engine == "fast"


def test_half_open_gets_traffic_only_without_healthier_choice() -> None:
    trial = candidate("trial", breaker=BreakerState.HALF_OPEN)
    assert decide("analysis", [trial, candidate("ok", depth=50)]).engine == "ok"
    assert decide("analysis", [trial]).engine == "trial"


def test_skips_full_queue_and_open_breaker() -> None:
    decision = decide(
        "analysis",
        [
            candidate("full", depth=100),
            candidate("open", breaker=BreakerState.OPEN),
            candidate("ok", depth=99),
        ],
    )
    assert decision.engine == "ok"
    assert "queue 99/100" in decision.reason


def test_equal_candidates_are_chosen_deterministically() -> None:
    first = decide("analysis", [candidate("a"), candidate("b")])
    second = decide("analysis", [candidate("b"), candidate("a")])
    assert first.engine == second.engine


candidates_strategy = st.lists(
    st.builds(
        Candidate,
        engine=st.text("abcdefgh", min_size=1, max_size=6),
        capabilities=st.just(frozenset({"analysis"})),
        queue_size=st.integers(1, 1000),
        live_workers=st.integers(0, 3),
        depth=st.integers(0, 2000),
        breaker=st.sampled_from(list(BreakerState)),
        success_rate=st.floats(0, 1),
        latency_ms=st.one_of(st.none(), st.floats(0, 1e6)),
    ),
    min_size=1,
    max_size=20,
)


@given(candidates_strategy)
def test_decision_is_always_an_eligible_candidate_with_bounded_confidence(cands: list[Candidate]) -> None:
    try:
        decision = decide("analysis", cands)
    except (NoLiveEngine, Backpressure):
        eligible = [c for c in cands if c.live_workers and c.breaker is not BreakerState.OPEN]
        assert not any(c.depth < c.queue_size for c in eligible)
        return
    chosen = [c for c in cands if c.engine == decision.engine]
    assert any(
        c.live_workers > 0 and c.breaker is not BreakerState.OPEN and c.depth < c.queue_size for c in chosen
    )
    assert 0.0 <= decision.confidence <= 1.0
    best = max(
        score(c)
        for c in cands
        if c.live_workers and c.breaker is not BreakerState.OPEN and c.depth < c.queue_size
    )
    assert decision.confidence == pytest.approx(best, abs=1e-4)


def test_explore_tries_the_others_by_pick_and_says_so() -> None:
    best, second, third = candidate("best"), candidate("second", latency_ms=100), candidate("third", depth=90)
    assert explore("analysis", [third, best, second], 0.0).engine == "second"
    trial = explore("analysis", [third, best, second], 0.99)
    assert (trial.engine, trial.explored) == ("third", True)
    assert trial.reason.startswith("exploring: third of 3 candidate(s)")
    alone = explore("analysis", [best, candidate("open", breaker=BreakerState.OPEN)], 0.5)
    assert (alone.engine, alone.explored) == ("best", False)


@given(candidates_strategy, st.floats(0, 1, exclude_max=True))
def test_explore_never_picks_the_best_or_an_ineligible_engine(cands: list[Candidate], pick: float) -> None:
    cands = list({c.engine: c for c in cands}.values())  # engine names are unique in a fleet
    try:
        best = decide("analysis", cands)
    except (NoLiveEngine, Backpressure):
        return
    trial = explore("analysis", cands, pick)
    eligible = {
        c.engine
        for c in cands
        if c.live_workers and c.breaker is not BreakerState.OPEN and c.depth < c.queue_size
    }
    assert trial.engine in eligible
    assert trial.explored == (trial.engine != best.engine) == (len(eligible) > 1)
