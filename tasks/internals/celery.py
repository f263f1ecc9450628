"""Private parts of Celery used by batch tasks and batch publishing, and the worker consumer's
methods the platform overrides (tasks/refusals.py). Checked with celery 5.7.0."""

from __future__ import annotations

from typing import Any

from celery.app.task import Task
from celery.backends.base import BaseBackend
from celery.events.dispatcher import EventDispatcher
from celery.worker import state as worker_state
from celery.worker.consumer.consumer import Consumer

from tasks.internals import PrivatePart

CHECKED_WITH = "celery 5.7.0"


class BatchEventDispatcher(EventDispatcher):
    """Task events for Flower through a caller's (batching) producer, without declaring the
    event exchange or retrying once per message."""

    def _publish(self, event: Any, producer: Any, routing_key: str, **_: Any) -> None:
        producer.publish(
            event,
            routing_key=routing_key,
            exchange=self.exchange.name,
            retry=False,
            declare=(),
            serializer=self.serializer,
            headers=self.headers,
            delivery_mode=self.delivery_mode,
        )


def is_revoked(task_id: str) -> bool:
    """Whether `celery control revoke` named this id (batch tasks skip the Request that checks)."""
    return task_id in worker_state.revoked


def result_meta(backend: BaseBackend, encoded_result: Any, state: str) -> dict[str, Any]:
    """The stored form of a result, built as the backend's own store_result builds it."""
    meta: dict[str, Any] = backend._get_result_meta(
        result=encoded_result, state=state, traceback=None, request=None
    )
    return meta


def rate_limit_bucket(consumer: Consumer, task_name: str) -> Any:
    """The token bucket `celery control rate_limit` set for a task (None: no limit)."""
    return consumer.task_buckets.get(task_name)


def prefetch_restored(consumer: Consumer) -> bool:
    """False while the consumer's ack callbacks also restore its prefetch after a reconnect:
    then each message must be acked through its own callback, not in bulk."""
    return bool(consumer._maximum_prefetch_restored)


PARTS = [
    PrivatePart(
        EventDispatcher,
        "_publish",
        ("self", "event", "producer", "routing_key", "retry", "retry_policy", "utcoffset"),
        "BatchEventDispatcher overrides it to publish through a batching producer",
    ),
    PrivatePart(worker_state, "revoked", "attribute", "batch tasks check revoked ids themselves"),
    PrivatePart(
        BaseBackend,
        "_get_result_meta",
        ("self", "result", "state", "traceback", "request", "format_date", "encode"),
        "a batch's results are stored in one pipeline in the backend's own format",
    ),
    PrivatePart(
        Consumer,
        "_maximum_prefetch_restored",
        "instance",
        "bulk acks must not bypass the prefetch restore after a reconnect",
    ),
    PrivatePart(
        Consumer,
        "task_buckets",
        "instance",
        "batch tasks honour `celery control rate_limit` with the consumer's token buckets",
    ),
    PrivatePart(
        Task,
        "start_strategy",
        ("self", "app", "consumer", "kwargs"),
        "BatchTask replaces the per-message strategy (Task.Strategy) with its batcher",
    ),
    PrivatePart(
        Consumer,
        "on_decode_error",
        ("self", "message", "exc"),
        "RefusingConsumer (tasks/refusals.py) overrides it to count the messages that do not decode",
    ),
    PrivatePart(
        Consumer,
        "create_task_handler",
        ("self", "promise"),
        "calls each task's strategy as strategy(message, payload, ack, reject, callbacks)",
    ),
]
