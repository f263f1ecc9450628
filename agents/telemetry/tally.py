"""Counts and histogram observations gathered in memory, then written to Redis in one round trip.

Pure: a Tally turns `inc` and `observe` calls into hash-field increments, and `decode` turns the
hash back into samples. Histograms keep one field per bucket (not cumulative), a count and a sum,
so concurrent writers only ever add.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from agents.telemetry.catalog import ALL_METRICS, Metric

SEP = "\x1f"  # ASCII unit separator: cannot occur in task names, queues or engine names
BUCKET, COUNT, SUM = "bucket", "count", "sum"
_BY_NAME = {metric.name: metric for metric in ALL_METRICS}


class Tally:
    """Counter increments (ints) and histogram sums (floats) keyed by Redis hash field."""

    def __init__(self) -> None:
        self.counts: defaultdict[str, int] = defaultdict(int)
        self.sums: defaultdict[str, float] = defaultdict(float)

    def __bool__(self) -> bool:
        return bool(self.counts or self.sums)

    def inc(self, metric: Metric, labels: Sequence[str], amount: int = 1) -> None:
        """Add `amount` to a counter (or to a gauge kept as a running total)."""
        self.counts[_field(metric, "", labels)] += amount

    def observe(self, metric: Metric, labels: Sequence[str], value: float) -> None:
        """One histogram observation: its bucket, the count and the sum."""
        index = bisect.bisect_left(metric.buckets, value)
        le = repr(metric.buckets[index]) if index < len(metric.buckets) else "+Inf"
        self.counts[_field(metric, f"{BUCKET}:{le}", labels)] += 1
        self.counts[_field(metric, COUNT, labels)] += 1
        self.sums[_field(metric, SUM, labels)] += value

    def merge(self, other: Tally) -> None:
        """Add another tally's increments to this one."""
        for key, count in other.counts.items():
            self.counts[key] += count
        for key, total in other.sums.items():
            self.sums[key] += total


def _field(metric: Metric, part: str, labels: Sequence[str]) -> str:
    if len(labels) != len(metric.labels):
        raise ValueError(f"{metric.name} takes labels {metric.labels}, got {tuple(labels)}")
    return SEP.join([metric.name, part, *(str(value) for value in labels)])


@dataclass(slots=True)
class Histogram:
    """One histogram series: cumulative buckets as Prometheus wants them, count and sum."""

    buckets: list[tuple[str, float]] = field(default_factory=list)
    count: float = 0.0
    sum: float = 0.0


@dataclass(slots=True)
class Decoded:
    """What the Redis hash holds, by metric name and label values."""

    counters: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)
    histograms: dict[str, dict[tuple[str, ...], Histogram]] = field(default_factory=dict)


def decode(raw: Mapping[str, str] | Iterable[tuple[str, str]]) -> Decoded:
    """Samples from the hash's fields; fields of metrics no longer in the catalog are ignored."""
    items = raw.items() if isinstance(raw, Mapping) else raw
    decoded = Decoded()
    per_bucket: dict[tuple[str, tuple[str, ...]], dict[str, float]] = defaultdict(dict)
    for key, value in items:
        name, part, *labels = key.split(SEP)
        metric = _BY_NAME.get(name)
        if metric is None or len(labels) != len(metric.labels):
            continue
        series = tuple(labels)
        if metric.kind != "histogram":
            decoded.counters.setdefault(name, {})[series] = float(value)
            continue
        histogram = decoded.histograms.setdefault(name, {}).setdefault(series, Histogram())
        if part == COUNT:
            histogram.count = float(value)
        elif part == SUM:
            histogram.sum = float(value)
        elif part.startswith(BUCKET + ":"):
            per_bucket[(name, series)][part.partition(":")[2]] = float(value)
    for (name, series), counts in per_bucket.items():
        metric = _BY_NAME[name]
        running = 0.0
        cumulative = []
        for le in [*(repr(b) for b in metric.buckets), "+Inf"]:
            running += counts.get(le, 0.0)
            cumulative.append((le, running))
        decoded.histograms[name][series].buckets = cumulative
    return decoded
