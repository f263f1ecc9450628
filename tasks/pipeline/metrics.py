"""Metrics at the source: every step of every request's life is counted where it happens.

Counts go to Redis in the same round trip as the step's lifecycle records (the pipeline holds a
step's writes, agents/recorder.collecting), so they survive restarts, cost no extra round trip,
and `agent_tasks_total` matches the rows of task_results. `agents exporter` serves them.
Counting from Celery's events instead would miss batches and lose what an event receiver missed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agents.connections import redis_client
from agents.names import engine_of, is_platform_task
from agents.recorder import count
from agents.statuses import FAILED, FINAL_STATUSES, REJECTED, RETRYING, REVOKED, SUCCESS
from agents.telemetry import catalog as m
from agents.telemetry.tally import Tally
from tasks.pipeline.delivery import Delivery, Outcome, Published
from tasks.pipeline.hook import Hook

# celery-exporter's counter for each outcome.
_CELERY_COUNTER = {
    SUCCESS: m.TASK_SUCCEEDED,
    RETRYING: m.TASK_RETRIED,
    REVOKED: m.TASK_REVOKED,
    REJECTED: m.TASK_REJECTED,
}
# The outcome of routing a request that the router refused (the engine label then says "none").
NO_ENGINE = "none"


class MetricsHook(Hook):
    """Counts sent, received, started and ended requests; observes runtimes and latencies."""

    def after_publish(self, published: Sequence[Published]) -> None:
        tally = Tally()
        for item in published:
            tally.inc(m.TASK_SENT, (item.task, item.queue))
            decision = item.kwargs.get("decision")
            engine = engine_of(item.task)
            if engine and isinstance(decision, dict):  # routed by the intelligence engine
                outcome = "explored" if decision.get("explored") else "routed"
                tally.inc(m.ROUTING_DECISIONS, (engine, outcome))
                confidence = decision.get("confidence")
                if isinstance(confidence, int | float):
                    tally.observe(m.ROUTING_CONFIDENCE, (engine,), float(confidence))
        count(redis_client(), tally)

    def before_process(self, deliveries: Sequence[Delivery]) -> None:
        tally = Tally()
        for delivery in deliveries:
            labels = (delivery.task, delivery.queue)
            tally.inc(m.TASK_RECEIVED, labels)
            tally.inc(m.TASK_STARTED, labels)
        count(redis_client(), tally)

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        tally = Tally()
        now = time.time()
        for outcome in outcomes:
            _count_outcome(tally, outcome, now)
        count(redis_client(), tally)


def _count_outcome(tally: Tally, outcome: Outcome, now: float) -> None:
    delivery, status = outcome.delivery, outcome.status
    labels = (delivery.task, delivery.queue)
    if status == FAILED:
        tally.inc(m.TASK_FAILED, (*labels, type(outcome.error).__name__ if outcome.error else "unknown"))
    elif status in _CELERY_COUNTER:
        tally.inc(_CELERY_COUNTER[status], labels)
    if outcome.runtime is not None:
        tally.observe(m.TASK_RUNTIME, labels, outcome.runtime)
    if not is_platform_task(delivery.task):
        return  # task_results holds the platform's tasks only
    agent = agent_name(delivery)
    tally.inc(m.AGENT_TASKS, (agent, status))
    if status == REJECTED and not delivery.engine:  # the router refused it
        tally.inc(m.ROUTING_DECISIONS, (NO_ENGINE, _rejection_kind(outcome)))
    if status in FINAL_STATUSES:
        created = _created_at(delivery.request)
        if created is not None:
            tally.observe(m.AGENT_END_TO_END, (agent,), max(0.0, now - created))


def agent_name(delivery: Delivery) -> str:
    """The `agent_name` label: the engine, or the queue of the router and maintenance jobs."""
    return delivery.engine or delivery.queue or "unknown"


def _rejection_kind(outcome: Outcome) -> str:
    return str(getattr(outcome.error, "kind", "rejected"))


def _created_at(request: Any) -> float | None:
    raw = request.get("created_at") if isinstance(request, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        return None
