"""Alert state on successive snapshots: pending for `for`, fires once, cooldown, resolves."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from agents.monitoring.alerting import AlertState, evaluate
from agents.monitoring.thresholds import Threshold


def deep(for_seconds: float = 60, cooldown: float = 0) -> Threshold:
    return Threshold.model_validate(
        {"name": "Deep", "metric": "queue_depth", "comparison": ">", "value": 100, "for": for_seconds,
         "cooldown": cooldown}
    )  # fmt: skip


def run(
    threshold: Threshold, series: Sequence[tuple[float, float]], subject: str = "analysis"
) -> list[tuple[str, float]]:
    state = AlertState()
    seen: list[tuple[str, float]] = []
    for at, depth in series:
        for t in evaluate([threshold], {subject: {"queue_depth": depth}}, at, state):
            seen.append((t.kind, t.at))
    return seen


def test_fires_once_after_for_and_resolves_when_it_clears() -> None:
    series = [(0, 50), (10, 150), (40, 300), (69, 200), (70, 180), (100, 500), (130, 90), (140, 95)]
    assert run(deep(60), series) == [("fired", 70), ("resolved", 130)]


def test_a_dip_restarts_the_for_window() -> None:
    series = [(0, 150), (50, 150), (55, 10), (60, 150), (110, 150), (120, 150)]
    assert run(deep(60), series) == [("fired", 120)]


def test_cooldown_holds_back_a_second_firing_of_the_same_alert() -> None:
    series = [(0, 150), (1, 10), (2, 150), (100, 10), (301, 150), (302, 10)]
    assert run(deep(0, cooldown=300), series) == [
        ("fired", 0),
        ("resolved", 1),
        ("fired", 301),
        ("resolved", 302),
    ]


def test_one_alert_per_subject_and_selectors() -> None:
    state = AlertState()
    threshold = deep(0)
    first = evaluate(
        [threshold], {"analysis": {"queue_depth": 500}, "performance": {"queue_depth": 500}}, 0, state
    )
    assert sorted(t.subject for t in first) == ["analysis", "performance"]
    assert evaluate([threshold], {"analysis": {"queue_depth": 900}}, 5, state) == []  # already open
    only = threshold.model_copy(update={"selector": "performance"})
    assert [
        t.subject
        for t in evaluate(
            [only], {"analysis": {"queue_depth": 500}, "performance": {"queue_depth": 500}}, 0, AlertState()
        )
    ] == ["performance"]


def test_a_subject_missing_from_a_snapshot_keeps_its_alert() -> None:
    state = AlertState()
    evaluate([deep(0)], {"analysis": {"queue_depth": 500}}, 0, state)
    assert evaluate([deep(0)], {"performance": {"queue_depth": 1}}, 10, state) == []
    assert [t.kind for t in evaluate([deep(0)], {"analysis": {"queue_depth": 1}}, 20, state)] == ["resolved"]


@given(
    st.lists(st.tuples(st.floats(0.1, 30), st.booleans()), min_size=1, max_size=60),
    st.sampled_from([0.0, 15.0, 60.0]),
)
def test_fired_and_resolved_alternate_and_fire_only_after_for(
    steps: list[tuple[float, bool]], window: float
) -> None:
    threshold, state, at = deep(window), AlertState(), 0.0
    kinds, since = [], None
    for gap, high in steps:
        at += gap
        since = (since if since is not None else at) if high else None
        for t in evaluate([threshold], {"analysis": {"queue_depth": 150 if high else 50}}, at, state):
            kinds.append(t.kind)
            if t.kind == "fired":
                assert since is not None and at - since >= window
    assert all(a != b for a, b in pairwise(kinds))  # never two firings in a row
    assert not kinds or kinds[0] == "fired"
