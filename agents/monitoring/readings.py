"""One reading of the platform's figures for a performance snapshot, from the same module of sources
as the exporter (agents/telemetry/sources.py)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import redis
import structlog

from agents.monitoring.snapshot import BridgeFigures, EngineFigures, Reading
from agents.settings import get_settings
from agents.telemetry import catalog as m
from agents.telemetry.rates import completions, merge_buckets
from agents.telemetry.sources import BREAKER_VALUES, Figures, database_figures, read_figures, worker_usage

log = structlog.get_logger("agents.monitoring")


def take_reading(client: redis.Redis, database: bool = True) -> Reading:
    """Read every figure a threshold can measure, now (the exporter's sources)."""
    figures = read_figures(client)
    runtime_by_task: defaultdict[str, list[Any]] = defaultdict(list)
    for (task, _queue), series in figures.counted.histograms.get(m.TASK_RUNTIME.name, {}).items():
        runtime_by_task[task].append(series.buckets)
    histograms = figures.counted.histograms.get(m.AGENT_END_TO_END.name, {})
    end_to_end = {labels[0]: series.buckets for labels, series in histograms.items()}
    engines = [
        EngineFigures(c.engine, c.task, c.depth, c.live_workers, BREAKER_VALUES[c.breaker])
        for c in figures.engines
    ]
    platform = {"history_backlog": float(figures.history_backlog)}
    platform["redis_memory_bytes"] = float(figures.redis_memory.used_bytes)
    if figures.redis_memory.ratio is not None:
        platform["redis_memory_ratio"] = figures.redis_memory.ratio
    insights: dict[str, float] | None = None
    if database:
        try:
            from db.insights import recent_counts

            by_state, maximum = database_figures()
            platform["db_connection_ratio"] = sum(by_state.values()) / maximum if maximum else 0.0
            insights = recent_counts(get_settings().insight_cooldown_seconds)
        except Exception as exc:  # the snapshot goes on without it; the exporter says db down
            log.warning("reading_without_database", error=repr(exc))
    return Reading(
        at=time.time(),
        engines=engines,
        completions=completions(figures.counted.counters.get(m.AGENT_TASKS.name, {})),
        runtime={task: merge_buckets(series) for task, series in runtime_by_task.items()},
        end_to_end=end_to_end,
        platform=platform,
        workers=worker_usage(figures),
        bridge=_bridge(figures),
        insights=insights,
    )


def _bridge(figures: Figures) -> BridgeFigures | None:
    # Both times are Redis's clock: a bridge pod's own clock never enters the age.
    report = figures.bridge
    if report is None:
        return None
    return BridgeFigures(report.lag, report.paused, max(0.0, figures.now - report.at))
