"""A performance snapshot: what the thresholds measure, per engine and for the platform.

Pure. Two readings of the platform's figures (the counters the exporter serves, the registry's
live figures, the platform gauges) taken `window` seconds apart become one `Measurements`: queue
depth, live workers and breaker as read; failure ratio and runtime / end-to-end p95 over the
requests that completed between the two readings (as Prometheus's `rate` and
`histogram_quantile` over the same window would give them); the CPU and memory of the engine's
live workers (agents/telemetry/usage.py); for the platform, the gauges as read (history backlog,
database connections, Redis memory) and the bridge's lag.

The bridge's lag comes from the bridges' own reports in Redis. A report older than
BRIDGE_STALE_SECONDS (the bridge died, or cannot reach NATS or Redis) is not read as "no lag":
`bridge_lag` is then left out (an alert on it stays as it was) and `bridge_report_age_seconds`
says how old the newest report is, for a threshold of its own. While the bridge is paused
(`agents traffic old_system`) the lag grows on purpose and is left out too, as the Prometheus
rule `BridgeLagHigh` ignores it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agents.monitoring.thresholds import PLATFORM
from agents.telemetry.rates import (
    Completions,
    RawBucket,
    bucket_delta,
    completions_delta,
    failure_ratio,
    histogram_quantile,
)
from agents.telemetry.usage import WorkerUsage, by_engine

# A bridge writes its lag every 2 s while it runs (paused or not); ten times that and more is a
# bridge that is gone or stuck.
BRIDGE_STALE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class EngineFigures:
    """An engine's live figures at the reading: its task, queue depth, workers, breaker (0/1/2)."""

    engine: str
    task: str
    depth: int
    live_workers: int
    breaker: float


@dataclass(frozen=True, slots=True)
class BridgeFigures:
    """The newest bridge lag report: events not yet delivered, paused or not, its age in seconds."""

    lag: int
    paused: bool
    age_seconds: float


@dataclass(frozen=True, slots=True)
class Reading:
    """One read of the platform's figures at `at` (seconds); histograms are cumulative."""

    at: float
    engines: Sequence[EngineFigures]
    completions: Mapping[str, Completions] = field(default_factory=dict)  # by engine
    runtime: Mapping[str, Sequence[RawBucket]] = field(default_factory=dict)  # by task name
    end_to_end: Mapping[str, Sequence[RawBucket]] = field(default_factory=dict)  # by engine
    platform: Mapping[str, float] = field(default_factory=dict)  # history_backlog, ...
    workers: Sequence[WorkerUsage] = ()  # live workers' CPU and memory
    bridge: BridgeFigures | None = None  # None: no bridge ever reported
    insights: Mapping[str, float] | None = None  # per engine; None: the database was not read


def measurements(previous: Reading | None, current: Reading) -> dict[str, dict[str, float]]:
    """What each subject measures now; window figures are left out when nothing completed."""
    done = completions_delta(previous.completions if previous else None, current.completions)
    measured: dict[str, dict[str, float]] = {}
    usage = by_engine(current.workers)
    for figures in current.engines:
        values = {
            "queue_depth": float(figures.depth),
            "live_workers": float(figures.live_workers),
            "breaker_state": figures.breaker,
        }
        window = done.get(figures.engine)
        ratio = failure_ratio(window.failed, window.completed) if window else None
        if ratio is not None:
            values["failure_ratio"] = ratio
        runtime = _window_p95(previous.runtime if previous else None, current.runtime, figures.task)
        if runtime is not None:
            values["runtime_p95_seconds"] = runtime
        latency = _window_p95(previous.end_to_end if previous else None, current.end_to_end, figures.engine)
        if latency is not None:
            values["end_to_end_p95_seconds"] = latency
        if figures.engine in usage:
            used = usage[figures.engine]
            values["cpu_percent"] = used.cpu_percent
            values["memory_bytes"] = float(used.memory_bytes)
            values["worker_cpu_percent"] = used.max_worker_cpu_percent
            values["worker_memory_bytes"] = float(used.max_worker_memory_bytes)
        if current.insights is not None:  # the analysis engine's findings, for rules and thresholds
            values["insights_recent"] = float(current.insights.get(figures.engine, 0.0))
        measured[figures.engine] = values
    platform = {name: float(value) for name, value in current.platform.items()}
    platform |= bridge_measurements(current.bridge)
    if platform:
        measured[PLATFORM] = platform
    return measured


def bridge_measurements(bridge: BridgeFigures | None) -> dict[str, float]:
    """`bridge_report_age_seconds` whenever a bridge reported; `bridge_lag` only from a fresh
    report of a bridge that consumes (see the module's docstring)."""
    if bridge is None:
        return {}
    measured = {"bridge_report_age_seconds": bridge.age_seconds}
    if bridge.age_seconds <= BRIDGE_STALE_SECONDS and not bridge.paused:
        measured["bridge_lag"] = float(bridge.lag)
    return measured


def _window_p95(
    previous: Mapping[str, Sequence[RawBucket]] | None, current: Mapping[str, Sequence[RawBucket]], key: str
) -> float | None:
    if key not in current:
        return None
    window = bucket_delta(previous.get(key) if previous else None, current[key])
    if not window or window[-1][1] <= 0:
        return None
    p95 = histogram_quantile(0.95, window)
    return None if math.isnan(p95) else p95
