"""Load-test arithmetic, no servers."""

from __future__ import annotations

from agents.loadstats import Outcome, per_second, percentile, summarise


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


def test_per_second_buckets_offered_achieved_and_latency_by_second_sent() -> None:
    outcomes = [
        Outcome("success", 100.0, sent_at=100.1, finished_at=100.2),
        Outcome("success", 300.0, sent_at=100.5, finished_at=101.2),
        Outcome("failed", 50.0, "RuntimeError", sent_at=101.2, finished_at=101.25),
        Outcome(None, None, sent_at=101.5),  # lost: offered, never achieved
        Outcome("success", 2000.0, sent_at=101.9, finished_at=103.9),  # finished in second 3
    ]
    seconds = per_second(outcomes, first_sent=100.1)
    counts = [(s.second, s.offered, s.achieved) for s in seconds]
    assert counts == [(0, 2, 1), (1, 3, 1), (2, 0, 0), (3, 0, 1)]
    assert (seconds[0].p50_ms, seconds[0].p99_ms) == (100.0, 300.0)
    assert seconds[1].p50_ms == 2000.0  # only successes have a latency
    assert seconds[2].p50_ms is None and seconds[3].p95_ms is None
    assert per_second([], first_sent=0.0) == []
    report = summarise(offered_rate=2, outcomes=outcomes, first_sent=100.1, last_finished=103.9)
    assert report.seconds == seconds and "seconds" not in report.as_json()
