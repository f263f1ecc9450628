"""Figures of an engine's history for the analysis engine, pure: samples, quantiles, aggregates per
capability, per-bucket medians over time and their least-squares line."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.statuses import FAILED


@dataclass(frozen=True, slots=True)
class Sample:
    """One finished request as the history keeps it; times are epoch seconds, runtime seconds."""

    engine: str
    capability: str | None
    status: str
    created_at: float
    finished_at: float | None
    runtime: float | None

    @property
    def failed(self) -> bool:
        """The request ended in failure."""
        return self.status == FAILED

    @property
    def latency(self) -> float | None:
        """End to end: from the publish to the outcome (queueing included)."""
        return None if self.finished_at is None else max(self.finished_at - self.created_at, 0.0)


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation between closest ranks (numpy's default);
    None for no values."""
    if not 0 <= q <= 1:
        raise ValueError(f"q must be in [0, 1], got {q}")
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def success_runtimes(samples: Iterable[Sample]) -> list[float]:
    """Runtimes of the requests that worked: failures are judged by their ratio, not their speed
    (a handler that fails at once would otherwise pass for a fast one)."""
    return [s.runtime for s in samples if not s.failed and s.runtime is not None]


def aggregate(samples: Sequence[Sample]) -> dict[str, Any]:
    """Count, failures, failure ratio, p50/p95 runtime and p50/p95 end-to-end latency (seconds)."""
    runtimes = [s.runtime for s in samples if s.runtime is not None]
    latencies = [s.latency for s in samples if s.latency is not None]
    failures = sum(1 for s in samples if s.failed)
    return {
        "count": len(samples),
        "failures": failures,
        "failure_ratio": failures / len(samples) if samples else None,
        "runtime_p50": quantile(runtimes, 0.5),
        "runtime_p95": quantile(runtimes, 0.95),
        "latency_p50": quantile(latencies, 0.5),
        "latency_p95": quantile(latencies, 0.95),
    }


def by_capability(samples: Iterable[Sample]) -> list[dict[str, Any]]:
    """`aggregate` per (engine, capability), ordered by engine then capability."""
    groups: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples:
        groups.setdefault((sample.engine, sample.capability or ""), []).append(sample)
    return [
        {"engine": engine, "capability": capability or None} | aggregate(group)
        for (engine, capability), group in sorted(groups.items())
    ]


def bucket_medians(
    samples: Iterable[Sample], start: float, end: float, buckets: int, min_count: int = 1
) -> list[tuple[float, float]]:
    """(bucket middle, median runtime of successes) for each of `buckets` equal spans of
    [start, end) by creation time that holds at least `min_count` of them, oldest first."""
    if buckets < 1 or end <= start:
        raise ValueError(f"need at least one bucket over a positive span, got {buckets} over {start}..{end}")
    width = (end - start) / buckets
    grouped: list[list[float]] = [[] for _ in range(buckets)]
    for sample in samples:
        if start <= sample.created_at < end and not sample.failed and sample.runtime is not None:
            grouped[min(int((sample.created_at - start) / width), buckets - 1)].append(sample.runtime)
    return [
        (start + (i + 0.5) * width, statistics.median(values))
        for i, values in enumerate(grouped)
        if len(values) >= min_count
    ]


@dataclass(frozen=True, slots=True)
class Line:
    """A least-squares line y = intercept + slope * x and how much of y's variance it explains."""

    slope: float
    intercept: float
    r2: float

    def at(self, x: float) -> float:
        """The line's value at x."""
        return self.intercept + self.slope * x


def least_squares(points: Sequence[tuple[float, float]]) -> Line | None:
    """The ordinary least-squares line through (x, y) points; None with fewer than two distinct x.
    A flat y gives r2 1 when the line is flat too (nothing left unexplained)."""
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    syy = sum((y - mean_y) ** 2 for _, y in points)
    slope = sxy / sxx
    r2 = 1.0 if syy == 0 else sxy * sxy / (sxx * syy)
    return Line(slope, mean_y - slope * mean_x, r2)
