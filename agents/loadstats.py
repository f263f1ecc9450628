"""Load-test arithmetic: percentiles and the summary report. Pure, tested without servers."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

from agents.statuses import SUCCESS


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class Outcome:
    """What the history says about one sent request."""

    status: str | None  # None: never recorded with a final status (lost)
    latency_ms: float | None
    error_kind: str | None = None
    sent_at: float | None = None  # epoch seconds: when it was scheduled to be sent
    finished_at: float | None = None  # epoch seconds, from the history


@dataclass(frozen=True)
class Second:
    """One second of a run, counted from the first send: what `--plot` draws."""

    second: int
    offered: int  # requests scheduled in this second
    achieved: int  # successes that finished in this second
    p50_ms: float | None  # latencies of the successes sent in this second (None: there were none)
    p95_ms: float | None
    p99_ms: float | None


def per_second(outcomes: list[Outcome], first_sent: float) -> list[Second]:
    """Offered and achieved requests per second, and latency percentiles by second of sending,
    from the first send to the last finish (seconds without traffic included, as zeros)."""
    offered: Counter[int] = Counter()
    achieved: Counter[int] = Counter()
    latencies: dict[int, list[float]] = {}
    for outcome in outcomes:
        sent = None if outcome.sent_at is None else max(0, int(outcome.sent_at - first_sent))
        if sent is not None:
            offered[sent] += 1
        if outcome.status != SUCCESS:
            continue
        if outcome.finished_at is not None:
            achieved[max(0, int(outcome.finished_at - first_sent))] += 1
        if sent is not None and outcome.latency_ms is not None:
            latencies.setdefault(sent, []).append(outcome.latency_ms)
    last = max([*offered, *achieved], default=-1)
    seconds = []
    for second in range(last + 1):
        values = sorted(latencies.get(second, []))
        p50, p95, p99 = (percentile(values, f) if values else None for f in (0.50, 0.95, 0.99))
        seconds.append(Second(second, offered[second], achieved[second], p50, p95, p99))
    return seconds


@dataclass(frozen=True)
class LoadReport:
    """The figures `agents loadtest --json` prints."""

    offered_rate: float
    achieved_rate: float
    sent: int
    succeeded: int
    failed: int
    lost: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    duration_s: float
    seconds: list[Second] = field(default_factory=list, repr=False)  # for --plot, not in the JSON

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict with the documented keys first."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "seconds"}


def summarise(
    offered_rate: float, outcomes: list[Outcome], first_sent: float, last_finished: float
) -> LoadReport:
    """Fold per-request outcomes into the report; achieved rate counts successes per second."""
    succeeded = [o for o in outcomes if o.status == SUCCESS]
    lost = sum(1 for o in outcomes if o.status is None)
    latencies = sorted(o.latency_ms for o in succeeded if o.latency_ms is not None)
    span = max(last_finished - first_sent, 1e-9)
    errors = Counter(o.error_kind or o.status or "lost" for o in outcomes if o.status not in (SUCCESS, None))
    return LoadReport(
        offered_rate=offered_rate,
        achieved_rate=round(len(succeeded) / span, 1),
        sent=len(outcomes),
        succeeded=len(succeeded),
        failed=len(outcomes) - len(succeeded) - lost,
        lost=lost,
        p50_ms=round(percentile(latencies, 0.50), 2),
        p95_ms=round(percentile(latencies, 0.95), 2),
        p99_ms=round(percentile(latencies, 0.99), 2),
        max_ms=round(latencies[-1], 2) if latencies else 0.0,
        errors=dict(errors),
        duration_s=round(span, 3),
        seconds=per_second(outcomes, first_sent),
    )
