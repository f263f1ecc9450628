"""Messages a worker refuses without running them are counted: `agent_messages_refused_total`.

Celery 5.7's worker never loads a body whose content type is not in `accept_content` (JSON
only: pickle on the wire is remote code execution). kombu raises ContentDisallowed when the body
is first read, and the message is rejected, not requeued, so it cannot poison its queue. Where:

- tasks Celery runs itself: its default strategy reads the body, Consumer.on_invalid_task
  logs and rejects, and sends the public `task_rejected` signal (also sent, with no exception,
  for a message that is not a task message at all); `task_unknown` for an unregistered name;
- batch tasks (tasks/batching.py): the batcher reads the body, rejects and calls `refused`;
- a body that cannot be decoded at all (DecodeError): Consumer.on_decode_error logs and acks.
  It sends no signal, so the worker runs RefusingConsumer (celeryconfig `worker_consumer`);
- a raw message that is no readable kombu envelope: the reliable fetch moves it to the malformed
  list (tasks/transport) and counts it here;
- a task message whose headers or body Celery's strategy or the batcher would choke on (a
  missing or unhashable id or task, unhashable stamped_headers, a timelimit that is no pair, an
  empty expires, a body that is not [args, kwargs, embed], headers nested too deep to pickle),
  or whose body is over MAX_PAYLOAD_BYTES: RefusingConsumer checks each message before the
  strategy sees it (`problem_of`) and rejects it.

Counting never stops a refusal: a Redis error costs the count, not the reject. Every refusal is
logged (`message_refused`) with its queue, reason and the problem in words.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
import structlog
from celery.signals import task_rejected, task_unknown
from celery.utils.time import maybe_iso8601
from celery.worker.consumer.consumer import Consumer
from kombu.exceptions import ContentDisallowed, DecodeError
from vine import promise

from agents.connections import redis_client
from agents.recorder import count
from agents.settings import get_settings
from agents.telemetry import catalog as m
from agents.telemetry.tally import Tally

log = structlog.get_logger("agents.refusals")
_logger = logging.getLogger("agents.refusals")

# The `reason` label: a small fixed set.
CONTENT_TYPE = "content_type"  # a content type not in accept_content (pickle, yaml, ...)
UNDECODABLE = "undecodable"  # an accepted content type whose body does not decode
NOT_A_TASK = "not_a_task"  # no task name where Celery looks for one
INVALID = "invalid"  # a task message Celery or the batcher cannot build a request from
UNKNOWN_TASK = "unknown_task"  # a task name this worker has not registered
MALFORMED = "malformed"  # no kombu envelope the worker can read: moved to the malformed list
BAD_HEADER = "bad_header"  # a Celery header (task, id, timelimit, eta, expires) of the wrong shape
BAD_BODY = "bad_body"  # a task body that is not [args, kwargs, embed]
TOO_LARGE = "too_large"  # a body over MAX_PAYLOAD_BYTES (a client with another limit, or none)
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


# Deeper headers fail to pickle for the pool (RecursionError kills the worker); Celery's own
# (a chord's nested signatures) stay far below.
MAX_HEADER_DEPTH = 64
_SEQUENCE = (list, tuple)


def problem_of(message: Any, max_bytes: int) -> tuple[str, str] | None:
    """(reason, problem in words) if the body is over `max_bytes` or Celery's strategy or the
    batcher could not run this task message safely; None for a message to hand on (whatever
    else is wrong Celery refuses itself).

    Runs for every message: a len(), a handful of dict lookups and isinstance calls, a walk of
    the few container headers, and the body's decode, which kombu caches for the strategy."""
    size = len(message.body or b"")
    if size > max_bytes:
        return TOO_LARGE, f"body is {size} bytes, over the limit of {max_bytes} bytes (MAX_PAYLOAD_BYTES)"
    headers = message.headers
    if not isinstance(headers, dict) or "task" not in headers:  # Celery refuses it (not_a_task)
        return None
    found = _header_problem(headers)
    if found is not None:
        return BAD_HEADER, found
    try:
        body = message.decode()
    except Exception:  # ContentDisallowed, DecodeError: the strategy refuses it with its own reason
        return None
    if not (
        isinstance(body, _SEQUENCE)
        and len(body) == 3
        and isinstance(body[0], _SEQUENCE)
        and isinstance(body[1], dict)
        and (body[2] is None or isinstance(body[2], dict))
    ):
        return BAD_BODY, f"body is not [args, kwargs, embed] (content-type {message.content_type!r})"
    return None


# Headers Celery's worker main process uses as they come, and the type it needs: a dict key (task:
# its strategy's name), a mapping (stamps: read on a revoke by stamp). Anything else raised there
# and the worker exited (stamped_headers' items, checked below, are set members).
_TYPED_HEADERS: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("task", str, "a string"),
    ("stamps", (dict, type(None)), "an object or null"),
)


def _header_problem(headers: dict[str, Any]) -> str | None:
    for name, types, wanted in _TYPED_HEADERS:
        if not isinstance(headers.get(name), types):
            return f"headers.{name} is {type(headers.get(name)).__name__}, not {wanted}"
    if "id" not in headers:
        return "headers.id is missing"
    task_id = headers["id"]
    if not isinstance(task_id, str) or not task_id:
        return f"headers.id is {task_id!r:.40}, not a non-empty string"
    stamped = headers.get("stamped_headers")
    if stamped is not None and not (isinstance(stamped, _SEQUENCE) and all(type(s) is str for s in stamped)):
        return f"headers.stamped_headers is {stamped!r:.40}, not a list of strings or null"
    limits = headers.get("timelimit")
    if limits is not None and not (
        isinstance(limits, _SEQUENCE)
        and len(limits) == 2
        and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in limits)
    ):
        return f"headers.timelimit is {limits!r:.40}, not [soft, hard] seconds or nulls"
    for name in ("eta", "expires"):
        if headers.get(name) is not None and not _is_time(headers[name]):
            return f"headers.{name} is {headers[name]!r:.40}, not an ISO 8601 time"
    if _deeper_than(headers, MAX_HEADER_DEPTH):
        return f"headers nested deeper than {MAX_HEADER_DEPTH} levels"
    return None


def _is_time(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        return maybe_iso8601(value) is not None
    except (ValueError, TypeError, OverflowError):
        return False


def _deeper_than(value: dict[str, Any], limit: int) -> bool:
    """Whether containers nest more than `limit` levels (without recursion: it is the problem)."""
    stack: list[tuple[Any, int]] = [(v, 1) for v in value.values() if isinstance(v, dict | list)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def queue_of(consumer: Any, message: Any) -> str:
    """The queue a message was published to, if the app declares it (bounded label values)."""
    info = getattr(message, "delivery_info", None)
    routing_key = info.get("routing_key") if isinstance(info, dict) else None  # any JSON, from outside
    known = getattr(getattr(getattr(consumer, "app", None), "amqp", None), "queues", None) or {}
    return routing_key if isinstance(routing_key, str) and routing_key in known else OTHER_QUEUE


def refused(consumer: Any, message: Any, reason: str, problem: str = "") -> None:
    """Count (and log) one message the worker refused; called after it was rejected or acked."""
    content_type = getattr(message, "content_type", None)
    refused_raw(queue_of(consumer, message), reason, problem, content_type=content_type)


def refused_raw(queue: str, reason: str, problem: str = "", how_many: int = 1, **details: Any) -> None:
    """Count (and log) `how_many` messages refused from `queue` (a queue this worker consumes)."""
    log.warning(
        "message_refused", queue=queue, reason=reason, problem=problem or None, count=how_many, **details
    )
    tally = Tally()
    tally.inc(m.MESSAGES_REFUSED, (queue, reason), how_many)
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
    """Celery's worker consumer: refuses task messages its strategies would choke on, and counts
    the messages it acks because they do not decode."""

    def create_task_handler(self, promise: Any = promise) -> Any:
        """Celery's handler of each task message, behind a check of the message's shape."""
        handle = super().create_task_handler(promise)
        connection_errors = self.connection_errors
        max_bytes = get_settings().max_payload_bytes

        def on_task_received(message: Any) -> Any:
            found = problem_of(message, max_bytes)
            if found is None:
                return handle(message)
            # Rejected without requeue (Redis: removed from unacked), as Celery's on_invalid_task.
            message.reject_log_error(_logger, connection_errors)
            refused(self, message, *found)
            return None

        return on_task_received

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """Celery's handling (log, ack so the message cannot loop), then the count."""
        super().on_decode_error(message, exc)
        refused(self, message, reason_of(exc))
