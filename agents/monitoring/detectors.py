"""The analysis engine's detectors over one engine's samples, pure: latency regression, failure
spike, latency trend, and the per-engine figures the pipeline's aggregate step returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.monitoring.figures import Sample, bucket_medians, by_capability, least_squares, success_runtimes
from agents.monitoring.insights import (
    ANALYSED_STATUSES,
    FAILURE_SPIKE,
    LATENCY_REGRESSION,
    LATENCY_TREND,
    Insight,
    Rules,
    Window,
    failure_z,
    latency_shift,
)


def latency_regression(
    engine: str, baseline: Sequence[Sample], recent: Sequence[Sample], window: Window, rules: Rules
) -> Insight | None:
    """The recent median runtime is far out among the baseline's runtimes and materially higher."""
    before, now = success_runtimes(baseline), success_runtimes(recent)
    if len(before) < rules.min_samples or len(now) < rules.min_samples:
        return None
    shift = latency_shift(before, now)
    if shift is None or shift.z <= rules.z_limit:
        return None
    delta = shift.recent_median - shift.baseline_median
    if delta < rules.min_delta_seconds or (
        shift.increase is not None and shift.increase <= rules.min_increase
    ):
        return None
    critical = shift.recent_median >= rules.critical_ratio * shift.baseline_median
    summary = (
        f"{engine}: median runtime {ms(shift.recent_median)} in the last {span(window.recent_seconds)} "
        f"vs {ms(shift.baseline_median)} before (robust z {score(shift.z)})"
    )
    evidence = {
        "metric": "runtime", "baseline_median": shift.baseline_median, "recent_median": shift.recent_median,
        "robust_z": shift.z, "increase": shift.increase, "baseline_count": len(before),
        "recent_count": len(now),
    }  # fmt: skip
    return Insight(LATENCY_REGRESSION, engine, "critical" if critical else "warning", summary, evidence)


def failure_spike(
    engine: str, baseline: Sequence[Sample], recent: Sequence[Sample], window: Window, rules: Rules
) -> Insight | None:
    """The recent failure ratio is significantly and materially above the baseline's."""
    if len(baseline) < rules.min_samples or len(recent) < rules.min_samples:
        return None
    base_failed, recent_failed = sum(s.failed for s in baseline), sum(s.failed for s in recent)
    z = failure_z(base_failed, len(baseline), recent_failed, len(recent))
    base_ratio, recent_ratio = base_failed / len(baseline), recent_failed / len(recent)
    if z <= rules.failure_z_limit or recent_ratio - base_ratio < rules.min_failure_increase:
        return None
    summary = (
        f"{engine}: {recent_ratio:.0%} of requests failed in the last {span(window.recent_seconds)} "
        f"vs {base_ratio:.0%} before ({recent_failed} of {len(recent)}, z {score(z)})"
    )
    evidence = {
        "baseline_ratio": base_ratio, "recent_ratio": recent_ratio, "z": z,
        "baseline_failed": base_failed, "baseline_count": len(baseline),
        "recent_failed": recent_failed, "recent_count": len(recent),
    }  # fmt: skip
    severity = "critical" if recent_ratio >= rules.critical_failure_ratio else "warning"
    return Insight(FAILURE_SPIKE, engine, severity, summary, evidence)


def latency_trend(engine: str, samples: Sequence[Sample], window: Window, rules: Rules) -> Insight | None:
    """The least-squares line through the per-bucket median runtimes rises, fits, and matters."""
    points = bucket_medians(
        samples, window.start, window.until, rules.trend_buckets, rules.trend_bucket_samples
    )
    line = least_squares(points) if len(points) >= rules.trend_min_points else None
    if line is None or line.slope <= 0 or line.r2 < rules.trend_min_r2:
        return None
    first, last = points[0][0], points[-1][0]
    begin, end = line.at(first), line.at(last)
    relative = (end - begin) / begin if begin > 0 else None
    if end - begin < rules.min_delta_seconds or (relative is not None and relative <= rules.min_increase):
        return None
    summary = (
        f"{engine}: median runtime rising {ms(line.slope * 60)}/min over {span(last - first)} "
        f"({ms(max(begin, 0.0))} -> {ms(end)} fitted, r2 {line.r2:.2f})"
    )
    evidence = {
        "slope_per_second": line.slope, "r2": line.r2, "fitted_start": begin, "fitted_end": end,
        "increase": relative, "points": [[x, y] for x, y in points],
    }  # fmt: skip
    severity = "warning" if relative is None or relative >= 1 else "info"
    return Insight(LATENCY_TREND, engine, severity, summary, evidence)


def find_insights(engine: str, samples: Sequence[Sample], window: Window, rules: Rules) -> list[Insight]:
    """Every insight about one engine's samples over the window. A step up is reported as a
    regression only: the trend line through that step would say the same thing again."""
    analysed = [s for s in samples if s.status in ANALYSED_STATUSES]
    recent, baseline = window.recent(analysed), window.baseline(analysed)
    regression = latency_regression(engine, baseline, recent, window, rules)
    found = [
        regression,
        failure_spike(engine, baseline, recent, window, rules),
        None if regression else latency_trend(engine, analysed, window, rules),
    ]
    return [insight for insight in found if insight is not None]


def engine_figures(engine: str, samples: Sequence[Sample], window: Window, rules: Rules) -> dict[str, Any]:
    """What the pipeline's aggregate step returns for one engine (JSON-ready): the aggregates per
    capability of each window and the insights found, each carrying the window it judged."""
    bounds = {
        "until": window.until, "recent_seconds": window.recent_seconds,
        "baseline_seconds": window.baseline_seconds,
    }  # fmt: skip
    return {
        "engine": engine,
        "aggregates": {
            "recent": by_capability(window.recent(samples)),
            "baseline": by_capability(window.baseline(samples)),
        },
        "insights": [
            i.as_dict() | {"evidence": i.evidence | bounds}
            for i in find_insights(engine, samples, window, rules)
        ],
    }


def ms(seconds: float) -> str:
    """A duration for people: `4.2 ms`, `310 ms`, `12.5 s`."""
    millis = seconds * 1000
    if millis >= 10_000:
        return f"{seconds:.1f} s"
    return f"{millis:.0f} ms" if millis >= 10 else f"{millis:.1f} ms"


def span(seconds: float) -> str:
    """A window for people: `30 s`, `5 min`, `2 h`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.0f} h"


def score(z: float) -> str:
    """A z-score for people: one decimal below 10, none above."""
    return f"{z:.0f}" if abs(z) >= 10 else f"{z:.1f}"
