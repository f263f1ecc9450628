"""Rates and quantiles from two snapshots of the platform's counters. Pure: `agents top` reads the
snapshots, this module only does the arithmetic, the way Prometheus would over the same series."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from agents.statuses import FAILED, FINAL_STATUSES

# One bucket of a histogram: (inclusive upper bound "le", cumulative count). As `tally.decode`
# returns them (RawBucket) the bound is still the text Redis held ("0.25", "+Inf").
Bucket = tuple[float, float]
RawBucket = tuple[str | float, float]


def counter_delta(previous: float | None, current: float) -> float:
    """How much a counter grew; a drop means it was reset (Redis flushed), so, as Prometheus's
    `increase()` does, everything it holds now counts as new."""
    if previous is None or current < previous:
        return current
    return current - previous


def rate(previous: float | None, current: float, seconds: float) -> float | None:
    """Per-second growth between two readings `seconds` apart (None without a first reading)."""
    if previous is None or seconds <= 0:
        return None
    return counter_delta(previous, current) / seconds


def as_buckets(raw: Iterable[RawBucket]) -> list[Bucket]:
    """Buckets with numeric bounds, sorted by bound; equal bounds are added up."""
    merged: defaultdict[float, float] = defaultdict(float)
    for le, count in raw:
        merged[float(le)] += count  # float("+Inf") is inf
    return sorted(merged.items())


def merge_buckets(series: Iterable[Iterable[RawBucket]]) -> list[Bucket]:
    """Several series of one histogram added bucket by bucket: PromQL's `sum by (le)`."""
    return as_buckets(bucket for one in series for bucket in one)


def bucket_delta(previous: Sequence[RawBucket] | None, current: Sequence[RawBucket]) -> list[Bucket]:
    """The observations made between two readings of a cumulative histogram, bucket by bucket;
    a reset (the total went down) or no first reading gives the current buckets unchanged."""
    now = as_buckets(current)
    if not previous:
        return now
    before = dict(as_buckets(previous))
    total_before = max(before.values(), default=0.0)
    total_now = max((count for _, count in now), default=0.0)
    if total_now < total_before:
        return now
    return [(le, max(0.0, count - before.get(le, 0.0))) for le, count in now]


def histogram_quantile(q: float, buckets: Iterable[RawBucket]) -> float:
    """The q-quantile of cumulative buckets, interpolated linearly inside its bucket, exactly as
    PromQL's histogram_quantile: NaN when there is no +Inf bucket or no observation, the highest
    finite bound when the quantile falls in the +Inf bucket, -Inf/+Inf for q below 0/above 1."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = as_buckets(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    # Prometheus forces the counts to be monotonic (scrapes of buckets are not atomic).
    running, monotonic = 0.0, []
    for le, count in ordered:
        running = max(running, count)
        monotonic.append((le, running))
    observations = monotonic[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    index = next((i for i, (_, count) in enumerate(monotonic[:-1]) if count >= rank), len(monotonic) - 1)
    if index == len(monotonic) - 1:
        return monotonic[-2][0]
    bound, count = monotonic[index]
    if index == 0 and bound <= 0:
        return bound
    start = 0.0
    if index > 0:
        start, below = monotonic[index - 1]
        count -= below
        rank -= below
    if count == 0:  # q = 0 on an empty bucket: Prometheus divides 0 by 0 here; its start is meant
        return start
    return start + (bound - start) * (rank / count)


def failure_ratio(failed: float, completed: float) -> float | None:
    """Share of completed requests that failed (None when nothing completed)."""
    if completed <= 0:
        return None
    return min(1.0, max(0.0, failed / completed))


@dataclass(frozen=True, slots=True)
class Completions:
    """An engine's requests that reached a final status: all of them, and the failed ones."""

    completed: float = 0.0
    failed: float = 0.0


def completions(agent_tasks: Mapping[tuple[str, ...], float]) -> dict[str, Completions]:
    """Per engine, from `agent_tasks_total{agent_name, status}`: final outcomes and failures
    (stages such as retrying are not completions; rejected requests are not failures)."""
    completed: defaultdict[str, float] = defaultdict(float)
    failed: defaultdict[str, float] = defaultdict(float)
    for (engine, status), value in agent_tasks.items():
        if status in FINAL_STATUSES:
            completed[engine] += value
        if status == FAILED:
            failed[engine] += value
    return {engine: Completions(completed[engine], failed[engine]) for engine in completed}


def completions_delta(
    previous: Mapping[str, Completions] | None, current: Mapping[str, Completions]
) -> dict[str, Completions]:
    """Completions made between two readings, per engine (all of them without a first reading)."""
    before = previous or {}
    return {
        engine: Completions(
            counter_delta(before[engine].completed if engine in before else None, now.completed),
            counter_delta(before[engine].failed if engine in before else None, now.failed),
        )
        for engine, now in current.items()
    }
