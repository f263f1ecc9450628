"""Publishes many engine tasks in one Redis pipeline: plain Celery protocol-2 JSON messages.

`.delay()` costs about a millisecond per message (a client per publish, a queue declare, a
saferepr of the arguments); kombu 5.7's `Producer.batch()` buffers the LPUSHes of a whole batch
into one pipeline, and the queues are declared once instead of per message.

Tasks are published by name to the queue the decision names, so an engine announced by its own
worker is reachable from a router or bridge that never imported its code.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.utils.nodenames import anon_nodename
from kombu import Queue
from kombu.common import maybe_declare
from kombu.serialization import register
from kombu.utils import json as kombu_json

from agents.connections import redis_client
from agents.errors import PayloadTooLarge
from agents.models import Decision, TaskRequest
from agents.names import PUBLISH_ID_HEADER, REPLY_SUBJECT_HEADER, TASK_SERIALIZER
from agents.recorder import collecting
from agents.settings import get_settings
from tasks.internals.celery import BatchEventDispatcher
from tasks.outage import UNREACHABLE

# Redis commands buffered before kombu flushes the pipeline on its own.
PIPELINE_MAX = 2000


def limited_dumps(body: Any) -> str:
    """kombu's JSON of a task body; PayloadTooLarge over MAX_PAYLOAD_BYTES (kombu re-raises it
    wrapped in its EncodeError, whose message is this one's)."""
    text = kombu_json.dumps(body)
    limit = get_settings().max_payload_bytes
    if len(text) > limit:  # characters: a lower bound of the UTF-8 bytes, so only then encode
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise PayloadTooLarge(
                f"task body is {size} bytes, over the limit of {limit} bytes (MAX_PAYLOAD_BYTES)"
            )
    return text


# Where the publish-side limit is enforced, and why here: every task message of every path
# (`.delay()`, `send_task`, `agents send`, this publisher, the bridge through it) is serialized
# by kombu with the app's `task_serializer` (celeryconfig) just before it goes to Redis, so the
# check costs one len() of the JSON already written. A before_task_publish receiver sees the body
# unserialized and would encode every message twice. Same content type as kombu's "json", so
# workers' accept_content (json) takes these messages and any client can still read them.
register(TASK_SERIALIZER, limited_dumps, None, content_type="application/json", content_encoding="utf-8")


def queue_for(app: Celery, name: str) -> Queue:
    """The queue called `name`: this app's declaration, or one made as an engine's worker makes it."""
    known: Queue | None = app.amqp.queues.get(name)
    return known or Queue(name, exchange=app.amqp.default_exchange, routing_key=name)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One decided request ready to become an engine task message."""

    request: TaskRequest
    decision: Decision
    reply_subject: str | None = None
    # Carried over from a routed message: Celery's callbacks/errbacks/chain/chord and group, root
    # and parent ids (create_task_message's keywords), and the platform's own agents_* headers.
    options: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)


class TaskPublisher:
    """Sends engine task messages through a pooled producer, a whole batch per pipeline."""

    def __init__(self, app: Celery, sent_events: bool = False, publish_ids: bool = True) -> None:
        self.app = app
        # The bridge's tasks carry a publish id for the worker's claim; the router forwards its own.
        self.publish_ids = publish_ids
        # A task-sent event is a second message per task: it costs as much as the task itself.
        self.sent_events = sent_events
        self._queues: dict[str, Queue] = {}
        self._events_declared = False
        self._origin = anon_nodename()
        # Disabled: it never opens a connection of its own; it publishes through our producer.
        self._events = BatchEventDispatcher(app=app, enabled=False)

    def _queue(self, name: str, channel: Any) -> Queue:
        """The queue called `name`, declared once per publisher (an unknown one as its worker does)."""
        queue = self._queues.get(name)
        if queue is None:
            queue = queue_for(self.app, name)
            maybe_declare(queue, channel)
            self._queues[name] = queue
        return queue

    def publish(self, batch: Sequence[Outgoing]) -> list[tuple[Outgoing, Exception]]:
        """Publish every message that can be built; returns those that could not, each with its
        error (that request's own problem). Raises when the flush fails: kombu raises
        BatchPublishError when delivery is uncertain, a connection error when Redis is away."""
        if not batch:
            return []
        refused: list[tuple[Outgoing, Exception]] = []
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
            if not self._events_declared:
                maybe_declare(self._events.exchange, producer.channel)
                self._events_declared = True
            for index, item in enumerate(batch):
                request, decision = item.request, item.decision
                try:
                    queue = self._queue(decision.queue, producer.channel)
                    message = amqp.create_task_message(
                        request.task_id,
                        decision.task,
                        (request.model_dump(mode="json"),),
                        {"decision": decision.model_dump()},
                        reply_to=self.app.thread_oid,
                        create_sent_event=self.sent_events,
                        # Celery's saferepr of the payload costs as much as the rest of the message.
                        argsrepr=f"({request.capability!r}, {request.task_type!r})",
                        kwargsrepr=f"{{'decision': {decision.engine!r}}}",
                        origin=origin,
                        **item.options,
                    )
                    headers = dict(item.headers)
                    if self.publish_ids:
                        headers[PUBLISH_ID_HEADER] = f"{batch_id}-{index}"
                    if item.reply_subject:
                        headers[REPLY_SUBJECT_HEADER] = item.reply_subject
                    amqp.send_task_message(
                        producer,
                        decision.task,
                        message,
                        queue=queue,
                        priority=request.priority.broker_priority,
                        headers=headers,
                        declare=(),  # declared once above
                        event_dispatcher=self._events,
                        # Buffered publishes cannot fail; a failed flush raises and the batch is retried.
                        retry=False,
                    )
                except UNREACHABLE:
                    raise
                except Exception as exc:  # this request cannot become a message; the others can
                    refused.append((item, exc))
        return refused
