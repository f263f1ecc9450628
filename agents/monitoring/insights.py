"""The analysis engine's insights, pure: their kinds, severities, rules, the analysed window, and
the two comparisons of a recent window with its baseline (agents/monitoring/detectors.py uses them).

The recent window is compared with the baseline window just before it. Latency uses the robust
z-score (agents/monitoring/anomaly.py) of the recent median among the baseline's runtimes, so a few
slow requests in the baseline do not hide a regression; failures use the two-proportion z-test,
since a ratio of counts has a known (binomial) spread that a robust z would have to guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agents.monitoring.anomaly import DEFAULT_Z_LIMIT, robust_z_scores
from agents.monitoring.figures import Sample, quantile
from agents.statuses import FAILED, SUCCESS

LATENCY_REGRESSION, FAILURE_SPIKE, LATENCY_TREND = "latency_regression", "failure_spike", "latency_trend"
# The optimization engine's report of an action's measured effect (tasks/optimizer.py).
ACTION_VERDICT = "action_verdict"
KINDS = (LATENCY_REGRESSION, FAILURE_SPIKE, LATENCY_TREND, ACTION_VERDICT)
SEVERITIES = ("info", "warning", "critical")  # in rising order
ANALYSED_STATUSES = frozenset({SUCCESS, FAILED})  # rejected and revoked requests never ran


def severity_rank(severity: str) -> int:
    """0 for info, 1 for warning, 2 for critical (an unknown severity ranks lowest)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


@dataclass(frozen=True, slots=True)
class Window:
    """The analysed span ending at `until`: baseline [start, split), recent [split, until)."""

    until: float
    recent_seconds: float
    baseline_seconds: float

    @property
    def split(self) -> float:
        """Where the baseline ends and the recent window begins."""
        return self.until - self.recent_seconds

    @property
    def start(self) -> float:
        """Where the baseline begins."""
        return self.split - self.baseline_seconds

    def recent(self, samples: Sequence[Sample]) -> list[Sample]:
        """The samples created in the recent window."""
        return [s for s in samples if self.split <= s.created_at < self.until]

    def baseline(self, samples: Sequence[Sample]) -> list[Sample]:
        """The samples created in the baseline window."""
        return [s for s in samples if self.start <= s.created_at < self.split]


@dataclass(frozen=True, slots=True)
class Rules:
    """When a difference is an insight. Latencies in seconds, ratios 0..1."""

    z_limit: float = DEFAULT_Z_LIMIT  # latency: robust z of the recent median
    min_increase: float = 0.5  # latency: recent median at least 50% above the baseline's...
    min_delta_seconds: float = 0.02  # ...and at least 20 ms above it (a 2 ms -> 4 ms jump is noise)
    critical_ratio: float = 3.0  # latency: recent median this many times the baseline's -> critical
    min_samples: int = 5  # per window, for latency and failures alike
    failure_z_limit: float = 3.0
    min_failure_increase: float = 0.1  # failure ratio at least 10 points above the baseline's
    critical_failure_ratio: float = 0.5
    trend_buckets: int = 12  # the whole span cut into this many time buckets
    trend_min_points: int = 4  # buckets with enough requests to draw a line through
    trend_bucket_samples: int = 3
    trend_min_r2: float = 0.6  # the line explains most of the bucket medians' variance


@dataclass(frozen=True, slots=True)
class Insight:
    """A finding: its kind, what it is about, how bad, one line for people, the figures for machines."""

    kind: str
    subject: str
    severity: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (task results, NATS payloads)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Shift:
    """The recent median against the baseline: the robust z and the relative increase."""

    baseline_median: float
    recent_median: float
    z: float
    increase: float | None  # (recent - baseline) / baseline; None for a zero baseline


def latency_shift(baseline: Sequence[float], recent: Sequence[float]) -> Shift | None:
    """How far the recent median lies among the baseline values (None when a window is empty).
    The median joins the baseline for its score, so a constant baseline still has a spread."""
    base, now = quantile(baseline, 0.5), quantile(recent, 0.5)
    if base is None or now is None:
        return None
    z = robust_z_scores([*baseline, now])[-1]
    return Shift(base, now, z, (now - base) / base if base > 0 else None)


def failure_z(base_failed: int, base_count: int, recent_failed: int, recent_count: int) -> float:
    """Two-proportion z-score of the recent failure ratio against the baseline's (pooled); 0 when
    either window is empty or the pooled ratio is 0 or 1 (no spread to measure against)."""
    if not base_count or not recent_count:
        return 0.0
    pooled = (base_failed + recent_failed) / (base_count + recent_count)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / base_count + 1 / recent_count))
    return 0.0 if spread == 0 else (recent_failed / recent_count - base_failed / base_count) / spread
