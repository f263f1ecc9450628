"""The stuck-task reaper: a task still 'processing' past its hard limit plus grace is dead.

Its worker died without reporting (SIGKILL, node loss). An idempotent engine's request is
re-queued under the same task id; any other is marked failed with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from agents.base import BaseAgent
from agents.catalog import engines
from agents.limits import hard_limit
from agents.settings import get_settings

log = structlog.get_logger("agents.reaper")


@dataclass(frozen=True)
class Verdict:
    """What the reaper does with one stuck row."""

    task_id: str
    action: str  # "requeue" | "fail" | "wait"
    reason: str


def stuck_after(engine: BaseAgent | None) -> timedelta:
    """How long a task of `engine` may be processing before it counts as stuck."""
    settings = get_settings()
    limit = hard_limit(engine.config.task_timeout_seconds if engine and engine.config else None)
    return timedelta(seconds=limit + settings.reaper_grace_seconds)


def judge(row: Any, now: datetime, catalog: dict[str, BaseAgent]) -> Verdict:
    """Decide for one processing row (pure: the row, the clock and the catalog)."""
    engine = catalog.get(row.engine) if row.engine else None
    limit = stuck_after(engine)
    if row.started_at is None or now - row.started_at < limit:
        return Verdict(row.task_id, "wait", "within its time limit")
    reason = f"stuck: processing since {row.started_at:%Y-%m-%d %H:%M:%S}Z, over {limit.total_seconds():.0f}s"
    if engine and engine.config and engine.config.idempotent and row.capability:
        return Verdict(row.task_id, "requeue", reason + "; re-queued (idempotent engine)")
    return Verdict(row.task_id, "fail", reason + "; worker presumed lost")


def reap(now: datetime | None = None) -> dict[str, int]:
    """Fail or re-queue every stuck task; returns counts by action."""
    from db import history
    from db.models import FAILED, QUEUED
    from tasks.engine_tasks import engine_task

    now = now or datetime.now(UTC)
    catalog = engines()
    shortest = min(stuck_after(e) for e in catalog.values())
    counts = {"requeue": 0, "fail": 0, "wait": 0}
    for row in history.stuck(shortest):
        verdict = judge(row, now, catalog)
        counts[verdict.action] += 1
        if verdict.action == "requeue":
            request = {
                "capability": row.capability,
                "task_type": row.task_type or "default",
                "payload": row.payload or {},
                "priority": row.priority or 2,
            }
            engine_task(str(row.engine)).apply_async(args=(request,), task_id=row.task_id)
            history.mark(row.task_id, status=QUEUED, error=verdict.reason, retries_increment=1)
        elif verdict.action == "fail":
            history.mark(row.task_id, status=FAILED, error=verdict.reason)
        if verdict.action != "wait":
            log.warning("stuck_task", task_id=row.task_id, action=verdict.action, reason=verdict.reason)
    return counts
