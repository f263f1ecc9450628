"""Load-test arithmetic: percentiles and the summary report. Pure, tested without servers."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
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

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict with the documented keys first."""
        return asdict(self)


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
    )
