"""Workers' CPU and memory, per worker and per engine. Pure: the figures come from the heartbeat
reports (agents/telemetry/sources.py); the exporter and the snapshots aggregate them here, once.

CPU is psutil's percent of one core (100 = one core busy, 200 = two), summed over a worker's
process tree (its main process and pool children); memory is the tree's resident set size, in
bytes. Forked pool children share pages with their parent and RSS counts a shared page once per
process, so a tree's memory is an upper bound of what it really holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkerUsage:
    """One live worker's last reported figures and the engines it serves."""

    hostname: str
    engines: tuple[str, ...]
    cpu_percent: float
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class EngineUsage:
    """An engine's workers together (sums) and its busiest and largest worker (maxima)."""

    workers: int
    cpu_percent: float
    memory_bytes: int
    max_worker_cpu_percent: float
    max_worker_memory_bytes: int


def by_engine(workers: Iterable[WorkerUsage]) -> dict[str, EngineUsage]:
    """Each engine's usage; a worker that serves several engines counts fully for each of them
    (its processes cannot be split between engines)."""
    grouped: dict[str, list[WorkerUsage]] = {}
    for worker in workers:
        for engine in worker.engines:
            grouped.setdefault(engine, []).append(worker)
    return {
        engine: EngineUsage(
            workers=len(members),
            cpu_percent=sum(w.cpu_percent for w in members),
            memory_bytes=sum(w.memory_bytes for w in members),
            max_worker_cpu_percent=max(w.cpu_percent for w in members),
            max_worker_memory_bytes=max(w.memory_bytes for w in members),
        )
        for engine, members in sorted(grouped.items())
    }
