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

    routing = BatchRouting(read)
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
