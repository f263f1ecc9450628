"""One reading of the platform's figures for a performance snapshot, from the exporter's sources:
the counters in Redis (agents/telemetry/store.py), the registry's live figures, the history
backlog and PostgreSQL's connection use."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import redis
import structlog

from agents.monitoring.snapshot import EngineFigures, Reading
from agents.recorder import backlog
from agents.registry import Registry
from agents.routing.decision import BreakerState
from agents.telemetry import catalog as m
from agents.telemetry.rates import completions, merge_buckets
from agents.telemetry.store import read

log = structlog.get_logger("agents.monitoring")

BREAKER_VALUES = {BreakerState.CLOSED: 0.0, BreakerState.HALF_OPEN: 1.0, BreakerState.OPEN: 2.0}


def take_reading(client: redis.Redis, database: bool = True) -> Reading:
    """Read every figure a threshold can measure, now."""
    decoded = read(client)
    runtime_by_task: defaultdict[str, list[Any]] = defaultdict(list)
    for (task, _queue), series in decoded.histograms.get(m.TASK_RUNTIME.name, {}).items():
        runtime_by_task[task].append(series.buckets)
    end_to_end = {
        labels[0]: series.buckets
        for labels, series in decoded.histograms.get(m.AGENT_END_TO_END.name, {}).items()
    }
    engines = [
        EngineFigures(c.engine, c.task, c.depth, c.live_workers, BREAKER_VALUES[c.breaker])
        for c in Registry(client).candidates()
    ]
    platform = {"history_backlog": float(backlog(client))}
    if database:
        try:
            from db.stats import connection_use

            by_state, maximum = connection_use()
            platform["db_connection_ratio"] = sum(by_state.values()) / maximum if maximum else 0.0
        except Exception as exc:  # the snapshot goes on without it; the exporter says db down
            log.warning("reading_without_database", error=repr(exc))
    return Reading(
        at=time.time(),
        engines=engines,
        completions=completions(decoded.counters.get(m.AGENT_TASKS.name, {})),
        runtime={task: merge_buckets(series) for task, series in runtime_by_task.items()},
        end_to_end=end_to_end,
        platform=platform,
    )
