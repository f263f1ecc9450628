"""Task events for batch tasks, so Flower and `celery events` see each request finish.

Celery's per-message Request sends task-received/started/succeeded; batch tasks bypass it. Each
request of a batch gets one outcome event (task-succeeded, task-failed or task-retried) under its
own id, all published in one pipeline. Flower joins them with the task-sent event of the same id.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import Celery
from kombu.common import maybe_declare

from agents.publisher import PIPELINE_MAX, BatchEventDispatcher
from tasks.batching import BatchItem

log = structlog.get_logger("agents.task_events")


class OutcomeEvents:
    """Collects a batch's outcome events and publishes them together."""

    def __init__(self, task_name: str) -> None:
        self.task_name = task_name  # Flower's name for the request (there is no task-sent event)
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def succeeded(self, item: BatchItem, result: Any, runtime: float) -> None:
        self._add("task-succeeded", item, {"result": repr(result)[:256], "runtime": runtime})

    def failed(self, item: BatchItem, exc: BaseException) -> None:
        self._add("task-failed", item, {"exception": repr(exc)[:256], "traceback": ""})

    def retried(self, item: BatchItem, exc: BaseException) -> None:
        self._add("task-retried", item, {"exception": repr(exc)[:256], "traceback": ""})

    def _add(self, event_type: str, item: BatchItem, fields: dict[str, Any]) -> None:
        # Off unless the worker sends events (TASK_EVENTS, or Flower's enable_events command).
        if item.events:
            self.events.append((event_type, item.worker, {"uuid": item.id, "name": self.task_name} | fields))

    def publish(self, app: Celery) -> None:
        """Send the collected events in one pipeline."""
        if not self.events:
            return
        dispatchers: dict[str, BatchEventDispatcher] = {}
        with app.producer_or_acquire() as producer, producer.batch(max_size=PIPELINE_MAX):
            for event_type, hostname, fields in self.events:
                dispatcher = dispatchers.get(hostname)
                if dispatcher is None:
                    dispatcher = dispatchers[hostname] = BatchEventDispatcher(
                        app=app, hostname=hostname, enabled=False
                    )
                    # Unknown to this process's transport, the topic exchange would drop the event.
                    maybe_declare(dispatcher.exchange, producer.channel)
                dispatcher.publish(event_type, fields, producer=producer)
        self.events.clear()


def publish_task_events(events: OutcomeEvents) -> None:
    """Publish, but never fail a batch whose outcomes are already stored over a lost event."""
    try:
        from tasks.app import app

        events.publish(app)
    except Exception as exc:
        log.warning("task_events_not_sent", count=len(events.events), error=repr(exc))
