"""Publishes many engine tasks in one Redis pipeline: plain Celery protocol-2 JSON messages.

`.delay()` costs about a millisecond per message (a client per publish, a queue declare, a
saferepr of the arguments); kombu 5.7's `Producer.batch()` buffers the LPUSHes of a whole batch
into one pipeline, and the queues are declared once instead of per message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.events.dispatcher import EventDispatcher
from celery.utils.nodenames import anon_nodename
from kombu.common import maybe_declare

from agents.connections import redis_client
from agents.models import Decision, TaskRequest
from agents.names import engine_task_name
from agents.recorder import collecting

# Custom message header read by tasks/bridge_results.py in the worker.
REPLY_SUBJECT_HEADER = "agents_reply_subject"
# One id per published message: the worker's claim (db/claims.py) tells a redelivery of this
# message (same id: run it) from a second publish of the same task (other id: skip it).
PUBLISH_ID_HEADER = "agents_publish_id"
# Redis commands buffered before kombu flushes the pipeline on its own.
PIPELINE_MAX = 2000


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One decided request ready to become an engine task message."""

    request: TaskRequest
    decision: Decision
    reply_subject: str | None = None
    # Celery callbacks/errbacks/chain/chord carried over from a routed message.
    embed: dict[str, Any] | None = None


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


class TaskPublisher:
    """Sends engine task messages through a pooled producer, a whole batch per pipeline."""

    def __init__(self, app: Celery, sent_events: bool = False, publish_ids: bool = True) -> None:
        self.app = app
        # The bridge's tasks carry a publish id for the worker's claim; the router's need none.
        self.publish_ids = publish_ids
        # A task-sent event is a second message per task: it costs as much as the task itself.
        self.sent_events = sent_events
        self._declared = False
        self._origin = anon_nodename()
        # Disabled: it never opens a connection of its own; it publishes through our producer.
        self._events = BatchEventDispatcher(app=app, enabled=False)

    def _declare_queues(self) -> None:
        with self.app.producer_or_acquire() as producer:
            for queue in self.app.amqp.queues.values():
                maybe_declare(queue, producer.channel)
            maybe_declare(self._events.exchange, producer.channel)
        self._declared = True

    def publish(self, batch: Sequence[Outgoing]) -> None:
        """Publish every message or raise; kombu raises BatchPublishError when delivery is uncertain."""
        if not batch:
            return
        if not self._declared:
            self._declare_queues()
        amqp = self.app.amqp
        # Per-batch values Celery would otherwise compute per message (a uuid4 and the node name).
        batch_id = uuid.uuid4().hex
        origin = self._origin
        # Lifecycle "queued" events go in one RPUSH, before the batch's messages are flushed.
        with (
            self.app.producer_or_acquire() as producer,
            producer.batch(max_size=PIPELINE_MAX),
            collecting(redis_client()),
        ):
            for index, item in enumerate(batch):
                request, decision = item.request, item.decision
                name = engine_task_name(decision.engine)
                message = amqp.create_task_message(
                    request.task_id,
                    name,
                    (request.model_dump(mode="json"),),
                    {"decision": decision.model_dump()},
                    reply_to=self.app.thread_oid,
                    create_sent_event=self.sent_events,
                    # Celery's saferepr of the payload costs as much as the rest of the message.
                    argsrepr=f"({request.capability!r}, {request.task_type!r})",
                    kwargsrepr=f"{{'decision': {decision.engine!r}}}",
                    origin=origin,
                    **(item.embed or {}),
                )
                headers = {PUBLISH_ID_HEADER: f"{batch_id}-{index}"} if self.publish_ids else {}
                if item.reply_subject:
                    headers[REPLY_SUBJECT_HEADER] = item.reply_subject
                amqp.send_task_message(
                    producer,
                    name,
                    message,
                    queue=decision.queue,
                    priority=request.priority.broker_priority,
                    headers=headers,
                    declare=(),  # declared once above
                    event_dispatcher=self._events,
                    # Buffered publishes cannot fail; a failed flush raises and the events are naked.
                    retry=False,
                )
