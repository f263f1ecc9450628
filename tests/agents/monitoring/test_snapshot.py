"""Snapshots: live figures as read, window figures from two readings of the counters."""

from __future__ import annotations

import pytest

from agents.monitoring.snapshot import (
    BRIDGE_STALE_SECONDS,
    BridgeFigures,
    EngineFigures,
    Reading,
    measurements,
)
from agents.telemetry.rates import Completions
from agents.telemetry.usage import WorkerUsage

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


def with_figures(workers: list[WorkerUsage], bridge: BridgeFigures | None, **platform: float) -> Reading:
    return Reading(
        at=0,
        engines=[EngineFigures("analysis", TASK, depth=0, live_workers=2, breaker=0.0)],
        platform=platform,
        workers=workers,
        bridge=bridge,
    )


def test_workers_cpu_and_memory_per_engine() -> None:
    workers = [
        WorkerUsage("analysis@a", ("analysis",), cpu_percent=150.0, memory_bytes=400_000_000),
        WorkerUsage("analysis@b", ("analysis",), cpu_percent=20.0, memory_bytes=100_000_000),
        WorkerUsage("other@c", ("other",), cpu_percent=99.0, memory_bytes=1),  # no such engine card
    ]
    analysis = measurements(None, with_figures(workers, None))["analysis"]
    assert analysis["cpu_percent"] == 170.0 and analysis["memory_bytes"] == 500_000_000.0
    assert analysis["worker_cpu_percent"] == 150.0 and analysis["worker_memory_bytes"] == 400_000_000.0


def test_an_engine_without_a_report_of_its_workers_measures_no_usage() -> None:
    analysis = measurements(None, with_figures([], None))["analysis"]
    assert "worker_memory_bytes" not in analysis and "cpu_percent" not in analysis
    assert "platform" not in measurements(None, with_figures([], None))


def test_redis_memory_is_a_platform_figure_as_read() -> None:
    reading = with_figures([], None, redis_memory_bytes=900.0, redis_memory_ratio=0.9)
    assert measurements(None, reading)["platform"] == {"redis_memory_bytes": 900.0, "redis_memory_ratio": 0.9}


@pytest.mark.parametrize(
    ("bridge", "expected"),
    [
        # No bridge ever reported: nothing is measured, nothing fires.
        (None, None),
        # A fresh report of a consuming bridge: its lag, and the report's age.
        (BridgeFigures(lag=1500, paused=False, age_seconds=2.5),
         {"bridge_lag": 1500.0, "bridge_report_age_seconds": 2.5}),
        # Still fresh at exactly the bound.
        (BridgeFigures(lag=7, paused=False, age_seconds=BRIDGE_STALE_SECONDS),
         {"bridge_lag": 7.0, "bridge_report_age_seconds": 30.0}),
        # Stale (the bridge died): the lag is unknown, not 0; the age says why.
        (BridgeFigures(lag=0, paused=False, age_seconds=30.5), {"bridge_report_age_seconds": 30.5}),
        # Paused on purpose (traffic to the old system): the growing lag is not measured.
        (BridgeFigures(lag=5000, paused=True, age_seconds=1.0), {"bridge_report_age_seconds": 1.0}),
    ],
)  # fmt: skip
def test_the_bridge_lag_only_from_a_fresh_report_of_a_consuming_bridge(
    bridge: BridgeFigures | None, expected: dict[str, float] | None
) -> None:
    assert measurements(None, with_figures([], bridge)).get("platform") == expected


def test_recent_insights_per_engine_only_when_the_database_was_read() -> None:
    import dataclasses

    read = dataclasses.replace(reading(10, 5, 0, 5, 0), insights={"analysis": 2.0, "other": 1.0})
    assert measurements(None, read)["analysis"]["insights_recent"] == 2.0
    none_found = dataclasses.replace(read, insights={})
    assert measurements(None, none_found)["analysis"]["insights_recent"] == 0.0
    assert "insights_recent" not in measurements(None, reading(10, 5, 0, 5, 0))["analysis"]
