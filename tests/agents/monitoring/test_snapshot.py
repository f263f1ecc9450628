"""Snapshots: live figures as read, window figures from two readings of the counters."""

from __future__ import annotations

import pytest

from agents.monitoring.snapshot import EngineFigures, Reading, measurements
from agents.telemetry.rates import Completions

TASK = "agents.engine.analysis"


def runtime(fast: float, slow: float) -> list[tuple[str, float]]:
    """Cumulative buckets: `fast` requests at most 0.1 s, `slow` more at most 1 s."""
    return [("0.1", fast), ("1.0", fast + slow), ("+Inf", fast + slow)]


def reading(at: float, done: float, failed: float, fast: float, slow: float) -> Reading:
    return Reading(
        at=at,
        engines=[EngineFigures("analysis", TASK, depth=12, live_workers=2, breaker=0.0)],
        completions={"analysis": Completions(done, failed)},
        runtime={TASK: runtime(fast, slow)},
        platform={"history_backlog": 3, "db_connection_ratio": 0.25},
    )


def test_window_figures_come_from_the_requests_between_two_readings() -> None:
    before = reading(0, done=100, failed=1, fast=100, slow=0)
    after = reading(60, done=200, failed=21, fast=120, slow=80)
    measured = measurements(before, after)
    analysis = measured["analysis"]
    assert analysis["queue_depth"] == 12 and analysis["live_workers"] == 2 and analysis["breaker_state"] == 0
    assert analysis["failure_ratio"] == pytest.approx(0.2)  # 20 of the 100 completed in the window
    # 100 in the window: 20 fast, 80 slow; p95 is rank 95, 75 into the (0.1, 1.0] bucket of 80.
    assert analysis["runtime_p95_seconds"] == pytest.approx(0.1 + 0.9 * 75 / 80)
    assert measured["platform"] == {"history_backlog": 3.0, "db_connection_ratio": 0.25}
    assert "end_to_end_p95_seconds" not in analysis  # no histogram read: not measured


def test_nothing_completed_in_the_window_measures_no_ratio_or_percentile() -> None:
    same = reading(0, done=100, failed=1, fast=100, slow=0)
    analysis = measurements(same, reading(60, done=100, failed=1, fast=100, slow=0))["analysis"]
    assert "failure_ratio" not in analysis and "runtime_p95_seconds" not in analysis
    assert analysis["queue_depth"] == 12  # the live figures still are


def test_the_first_reading_uses_everything_counted_so_far() -> None:
    analysis = measurements(None, reading(0, done=10, failed=5, fast=10, slow=0))["analysis"]
    assert analysis["failure_ratio"] == 0.5 and analysis["runtime_p95_seconds"] == pytest.approx(0.095)
