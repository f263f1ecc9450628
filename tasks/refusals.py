"""Messages a worker refuses without running them are counted: `agent_messages_refused_total`.

Celery 5.7's worker never loads a body whose content type is not in `accept_content` (JSON
only: pickle on the wire is remote code execution). kombu raises ContentDisallowed when the body
is first read, and the message is rejected, not requeued, so it cannot poison its queue. Where:

- tasks Celery runs itself: its default strategy reads the body, Consumer.on_invalid_task
  logs and rejects, and sends the public `task_rejected` signal (also sent, with no exception,
  for a message that is not a task message at all); `task_unknown` for an unregistered name;
- batch tasks (tasks/batching.py): the batcher reads the body, rejects and calls `refused`;
- a body that cannot be decoded at all (DecodeError): Consumer.on_decode_error logs and acks.
  It sends no signal, so the worker runs RefusingConsumer (celeryconfig `worker_consumer`).

Counting never stops a refusal: a Redis error costs the count, not the reject.
"""

from __future__ import annotations

from typing import Any

import redis
import structlog
from celery.signals import task_rejected, task_unknown
from celery.worker.consumer.consumer import Consumer
from kombu.exceptions import ContentDisallowed, DecodeError

from agents.connections import redis_client
from agents.recorder import count
from agents.telemetry import catalog as m
from agents.telemetry.tally import Tally

log = structlog.get_logger("agents.refusals")

# The `reason` label: a small fixed set.
CONTENT_TYPE = "content_type"  # a content type not in accept_content (pickle, yaml, ...)
UNDECODABLE = "undecodable"  # an accepted content type whose body does not decode
NOT_A_TASK = "not_a_task"  # no task name where Celery looks for one
INVALID = "invalid"  # a task message Celery or the batcher cannot build a request from
UNKNOWN_TASK = "unknown_task"  # a task name this worker has not registered
# The `queue_name` label of a message whose routing key names no queue of the app: the key comes
# from the publisher, so it must not become a label value as is.
OTHER_QUEUE = "other"


def reason_of(exc: BaseException | None) -> str:
    """The `reason` label of a refusal caused by `exc` (None: not a task message)."""
    if exc is None:
        return NOT_A_TASK
    if isinstance(exc, ContentDisallowed):
        return CONTENT_TYPE
    if isinstance(exc, DecodeError):
        return UNDECODABLE
    return INVALID  # InvalidTaskError, or whatever else stops a request being built from it


def queue_of(consumer: Any, message: Any) -> str:
    """The queue a message was published to, if the app declares it (bounded label values)."""
    routing_key = (getattr(message, "delivery_info", None) or {}).get("routing_key")
    known = getattr(getattr(getattr(consumer, "app", None), "amqp", None), "queues", None) or {}
    return str(routing_key) if routing_key in known else OTHER_QUEUE


def refused(consumer: Any, message: Any, reason: str) -> None:
    """Count (and log) one message the worker refused; called after it was rejected or acked."""
    queue = queue_of(consumer, message)
    content_type = getattr(message, "content_type", None)
    log.warning("message_refused", queue=queue, reason=reason, content_type=content_type)
    tally = Tally()
    tally.inc(m.MESSAGES_REFUSED, (queue, reason))
    try:
        count(redis_client(), tally)
    except redis.RedisError as exc:
        log.warning("message_refused_not_counted", queue=queue, reason=reason, error=repr(exc))


@task_rejected.connect
def _on_task_rejected(
    sender: Any = None, message: Any = None, exc: BaseException | None = None, **_: Any
) -> None:
    refused(sender, message, reason_of(exc))


@task_unknown.connect
def _on_task_unknown(sender: Any = None, message: Any = None, **_: Any) -> None:
    refused(sender, message, UNKNOWN_TASK)


class RefusingConsumer(Consumer):
    """Celery's worker consumer, counting the messages it acks because they do not decode."""

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """Celery's handling (log, ack so the message cannot loop), then the count."""
        super().on_decode_error(message, exc)
        refused(self, message, reason_of(exc))
