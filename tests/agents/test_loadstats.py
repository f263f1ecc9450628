"""Load-test arithmetic, no servers."""

from __future__ import annotations

from agents.loadstats import Outcome, percentile, summarise


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (50.0, 99.0, 100.0)
    assert percentile([], 0.5) == 0.0


def test_summary_counts_lost_failed_and_rate() -> None:
    outcomes = [Outcome("success", 10.0)] * 8 + [Outcome("failed", 5.0, "RuntimeError"), Outcome(None, None)]
    report = summarise(offered_rate=10, outcomes=outcomes, first_sent=100.0, last_finished=102.0)
    assert (report.sent, report.succeeded, report.failed, report.lost) == (10, 8, 1, 1)
    assert report.achieved_rate == 4.0
    assert report.errors == {"RuntimeError": 1}
    assert report.p99_ms == 10.0
    keys = {
        "offered_rate",
        "achieved_rate",
        "sent",
        "succeeded",
        "failed",
        "lost",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
    }
    assert keys <= set(report.as_json())
