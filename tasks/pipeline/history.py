"""History: every step of a platform task's life becomes a lifecycle record for PostgreSQL.

queued (in the publisher), processing, then the outcome or a retry. A routed request keeps one
task id, so its row gathers the router's decision and the engine's run; the router itself
records only the requests it refuses.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from agents.connections import redis_client
from agents.lifecycle import LifecycleEvent, request_fields
from agents.names import ROUTE_TASK, engine_of, is_platform_task
from agents.recorder import record
from agents.statuses import PROCESSING, QUEUED, RETRYING, SUCCESS
from tasks.pipeline.delivery import Delivery, Outcome, Published
from tasks.pipeline.hook import Hook


class HistoryHook(Hook):
    """Appends lifecycle records to the history list, one round trip per call."""

    def after_publish(self, published: Sequence[Published]) -> None:
        events = [_queued(p) for p in published if is_platform_task(p.task)]
        record(redis_client(), events)

    def before_process(self, deliveries: Sequence[Delivery]) -> None:
        now = time.time()
        events = [
            LifecycleEvent(
                d.id,
                PROCESSING,
                at=now,
                task_name=d.task,
                engine=d.engine,
                started_at=now,
                worker=d.worker,
                retries=d.retries,
            )
            for d in deliveries
            # A routed request's "processing" is its engine's; the router only records refusals.
            if is_platform_task(d.task) and d.task != ROUTE_TASK
        ]
        record(redis_client(), events)

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        now = time.time()
        record(redis_client(), [_outcome(o, now) for o in outcomes if is_platform_task(o.delivery.task)])


def _queued(published: Published) -> LifecycleEvent:
    fields = request_fields(published.args[0] if published.args else None)
    decision = published.kwargs.get("decision")
    confidence = reason = None
    if isinstance(decision, dict):
        confidence, reason = decision.get("confidence"), decision.get("reason")
    return LifecycleEvent(
        published.task_id, QUEUED, task_name=published.task, engine=engine_of(published.task),
        confidence=confidence, reason=reason, **fields,
    )  # fmt: skip


def _outcome(outcome: Outcome, now: float) -> LifecycleEvent:
    d = outcome.delivery
    if outcome.status == RETRYING:
        return LifecycleEvent(d.id, RETRYING, at=now, retries=d.retries + 1, error=f"retry: {outcome.reason}")
    if outcome.status == SUCCESS:
        return LifecycleEvent(
            d.id, SUCCESS, at=now, finished_at=now, runtime=outcome.runtime, result=outcome.result,
            worker=d.worker or None,
        )  # fmt: skip
    return LifecycleEvent(
        d.id, outcome.status, at=now, finished_at=now, runtime=outcome.runtime, error=outcome.reason
    )
