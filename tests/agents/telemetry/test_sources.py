"""Worker reports as the heartbeat writes them, and what a damaged one reads as."""

from __future__ import annotations

from agents.telemetry.sources import WorkerReport


def test_a_report_reads_back_and_a_damaged_one_is_empty() -> None:
    report = WorkerReport.parse(b'{"active": 3, "queues": ["intelligence", "maintenance"]}')
    assert report == WorkerReport(3, ("intelligence", "maintenance"))
    assert WorkerReport.parse("not json") == WorkerReport() == WorkerReport.parse("[1, 2]")
