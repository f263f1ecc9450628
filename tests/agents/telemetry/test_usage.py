"""Workers' CPU and memory per engine: sums of the engine's workers, and its busiest and largest."""

from __future__ import annotations

from agents.telemetry.usage import EngineUsage, WorkerUsage, by_engine


def test_each_engine_sums_its_workers_and_keeps_the_largest() -> None:
    workers = [
        WorkerUsage("analysis@a", ("analysis",), cpu_percent=120.0, memory_bytes=300),
        WorkerUsage("analysis@b", ("analysis",), cpu_percent=30.5, memory_bytes=700),
        # A worker serving two engines counts fully for both.
        WorkerUsage("both@c", ("counter", "flaky"), cpu_percent=10.0, memory_bytes=50),
    ]
    assert by_engine(workers) == {
        "analysis": EngineUsage(
            workers=2, cpu_percent=150.5, memory_bytes=1000, max_worker_cpu_percent=120.0,
            max_worker_memory_bytes=700,
        ),
        "counter": EngineUsage(1, 10.0, 50, 10.0, 50),
        "flaky": EngineUsage(1, 10.0, 50, 10.0, 50),
    }  # fmt: skip


def test_no_worker_no_engine() -> None:
    assert by_engine([]) == {}
    assert by_engine([WorkerUsage("old@a", (), 1.0, 1)]) == {}
