"""Task events for batch tasks, so Flower and `celery events` see each request end.

Celery's per-message Request sends task-received/started/succeeded for the tasks it traces;
batch tasks bypass it. Each request of a batch gets one outcome event (task-succeeded,
task-failed, task-retried or task-revoked) under its own id, all published in one pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kombu.common import maybe_declare

from agents.statuses import FAILED, REJECTED, RETRYING, REVOKED, SUCCESS
from tasks.app import app
from tasks.internals.celery import BatchEventDispatcher
from tasks.pipeline.delivery import Outcome
from tasks.pipeline.hook import Hook
from tasks.publisher import PIPELINE_MAX

EVENT_TYPES = {
    SUCCESS: "task-succeeded",
    FAILED: "task-failed",
    REJECTED: "task-failed",
    RETRYING: "task-retried",
    REVOKED: "task-revoked",
}


class TaskEventsHook(Hook):
    """Sends one outcome event per request of a batch, while the worker sends events."""

    tracer_does_it = True

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        # Off unless the worker sends events (TASK_EVENTS, or Flower's enable_events command).
        events = [
            (EVENT_TYPES[o.status], o.delivery.worker, _fields(o)) for o in outcomes if o.delivery.events
        ]
        if events:
            publish_events(events)


def _fields(outcome: Outcome) -> dict[str, Any]:
    fields: dict[str, Any] = {"uuid": outcome.delivery.id, "name": outcome.delivery.task}
    if outcome.status == SUCCESS:
        return fields | {"result": repr(outcome.result)[:256], "runtime": outcome.runtime}
    if outcome.status == REVOKED:
        return fields | {"terminated": False, "expired": "expired" in (outcome.reason or "")}
    return fields | {"exception": repr(outcome.error)[:256], "traceback": ""}


def publish_events(events: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
    """Publish (event type, worker hostname, fields) events in one pipeline."""
    dispatchers: dict[str, BatchEventDispatcher] = {}
    with app.producer_or_acquire() as producer, producer.batch(max_size=PIPELINE_MAX):
        for event_type, hostname, fields in events:
            dispatcher = dispatchers.get(hostname)
            if dispatcher is None:
                dispatcher = dispatchers[hostname] = BatchEventDispatcher(
                    app=app, hostname=hostname, enabled=False
                )
                # Unknown to this process's transport, the topic exchange would drop the event.
                maybe_declare(dispatcher.exchange, producer.channel)
            dispatcher.publish(event_type, fields, producer=producer)
