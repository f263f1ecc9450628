"""Batch routing: live figures read once per capability; the batch counts as queue depth (no servers)."""

from __future__ import annotations

import pytest

from agents.errors import Backpressure, NoLiveEngine
from agents.routing.batch import BatchRouting
from agents.routing.decision import Candidate


def fleet(depth_a: int = 0, depth_b: int = 0) -> list[Candidate]:
    return [
        Candidate("a", frozenset({"cap"}), queue_size=10, live_workers=1, depth=depth_a),
        Candidate("b", frozenset({"cap"}), queue_size=10, live_workers=1, depth=depth_b),
    ]


def test_a_batch_never_overfills_the_queues() -> None:
    reads: list[str] = []

    def read(capability: str) -> list[Candidate]:
        reads.append(capability)
        return fleet(depth_a=5, depth_b=8)

    routing = BatchRouting(read, explore_share=0.0)  # capacity only: trials are tested below
    chosen = [routing.decide("cap").engine for _ in range(7)]
    # a has 5 free slots and b 2: exactly that many go to each, then backpressure
    assert sorted(chosen) == ["a"] * 5 + ["b"] * 2
    with pytest.raises(Backpressure):
        routing.decide("cap")
    assert reads == ["cap"]  # live figures read once for the whole batch


def test_pinned_engine_and_refusals_are_remembered() -> None:
    routing = BatchRouting(lambda cap: [Candidate("a", frozenset({"cap"}), queue_size=10)])
    with pytest.raises(NoLiveEngine):
        routing.decide("cap", "a")
    with pytest.raises(NoLiveEngine):
        routing.decide("cap", "a")
    assert BatchRouting(lambda cap: fleet()).decide("cap", "b").engine == "b"


def test_a_share_of_requests_tries_the_other_engine() -> None:
    # Draws: 0.9 (no trial), 0.01 (trial) then 0.0 (which other engine), 0.9 (no trial).
    draws = iter([0.9, 0.01, 0.0, 0.9])
    healthy_and_failing = [
        Candidate("good", frozenset({"cap"}), queue_size=100, live_workers=1),
        Candidate("bad", frozenset({"cap"}), queue_size=100, live_workers=1, success_rate=0.1),
    ]
    routing = BatchRouting(lambda cap: healthy_and_failing, explore_share=0.02, draw=lambda: next(draws))
    decisions = [routing.decide("cap") for _ in range(3)]
    assert [d.engine for d in decisions] == ["good", "bad", "good"]
    assert [d.explored for d in decisions] == [False, True, False]
    assert decisions[1].reason.startswith("exploring: bad of 2 candidate(s): success 10%")


def test_no_trial_when_only_one_engine_can_take_it() -> None:
    one_full = fleet(depth_a=0, depth_b=10)
    routing = BatchRouting(lambda cap: one_full, explore_share=0.5, draw=lambda: 0.0)
    assert {routing.decide("cap").engine for _ in range(5)} == {"a"}
    pinned = BatchRouting(lambda cap: fleet(), explore_share=0.5, draw=lambda: 0.0)
    assert {pinned.decide("cap", "b").engine for _ in range(5)} == {"b"}  # a pinned engine stays pinned
