"""The stuck-task reaper: a task still 'processing' past its hard limit plus grace is dead.

Its worker died without reporting (SIGKILL, node loss). An idempotent engine's request is
re-queued under the same task id; any other is marked failed with the reason. Engines are
judged by their cards: the catalog's, and those their workers announced (custom engines this
process has no code for).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from agents.catalog import engines
from agents.connections import redis_client, registry
from agents.limits import hard_limit
from agents.recorder import count
from agents.registry import EngineCard, engine_card
from agents.settings import get_settings
from agents.statuses import FAILED, QUEUED, RETRYING
from agents.telemetry.catalog import AGENT_TASKS
from agents.telemetry.tally import Tally

log = structlog.get_logger("agents.reaper")
# Re-queues one stuck request: (the engine's card, the request, its task id, its retries so far).
Requeue = Callable[[EngineCard, dict[str, Any], str, int], None]


@dataclass(frozen=True)
class Verdict:
    """What the reaper does with one stuck row."""

    task_id: str
    action: str  # "requeue" | "fail" | "wait"
    reason: str


def stuck_after(card: EngineCard | None) -> timedelta:
    """How long a task of an engine may be processing before it counts as stuck."""
    limit = card.time_limit if card and card.time_limit else hard_limit(None)
    return timedelta(seconds=limit + get_settings().reaper_grace_seconds)


def judge(row: Any, now: datetime, cards: Mapping[str, EngineCard]) -> Verdict:
    """Decide for one processing row (pure: the row, the clock and the engines' cards)."""
    card = cards.get(row.engine) if row.engine else None
    limit = stuck_after(card)
    if row.started_at is None or now - row.started_at < limit:
        return Verdict(row.task_id, "wait", "within its time limit")
    reason = f"stuck: processing since {row.started_at:%Y-%m-%d %H:%M:%S}Z, over {limit.total_seconds():.0f}s"
    if card and card.idempotent and row.capability:
        return Verdict(row.task_id, "requeue", reason + "; re-queued (idempotent engine)")
    return Verdict(row.task_id, "fail", reason + "; worker presumed lost")


def known_cards() -> dict[str, EngineCard]:
    """Cards of every engine: announced by workers, else built from this process's catalog."""
    return {name: engine_card(e, 1) for name, e in engines().items()} | registry().cards()


def reap(requeue: Requeue, now: datetime | None = None) -> dict[str, int]:
    """Fail or re-queue (through `requeue`) every stuck task; returns counts by action."""
    from db import history

    now = now or datetime.now(UTC)
    cards = known_cards()
    shortest = min(stuck_after(card) for card in cards.values())
    counts = {"requeue": 0, "fail": 0, "wait": 0}
    # agent_tasks_total follows the rows this changes (a requeue is a retry), as the pipeline's do.
    tally = Tally()
    for row in history.stuck(shortest):
        verdict = judge(row, now, cards)
        counts[verdict.action] += 1
        if verdict.action == "requeue":
            request = {
                "capability": row.capability,
                "task_type": row.task_type or "default",
                "payload": row.payload or {},
                "priority": row.priority or 2,
            }
            requeue(cards[str(row.engine)], request, row.task_id, (row.retries or 0) + 1)
            if history.mark(row.task_id, status=QUEUED, error=verdict.reason, retries_increment=1):
                tally.inc(AGENT_TASKS, (str(row.engine or "unknown"), RETRYING))
        elif verdict.action == "fail" and history.mark(row.task_id, status=FAILED, error=verdict.reason):
            tally.inc(AGENT_TASKS, (str(row.engine or "unknown"), FAILED))
        if verdict.action != "wait":
            log.warning("stuck_task", task_id=row.task_id, action=verdict.action, reason=verdict.reason)
    count(redis_client(), tally)
    return counts
