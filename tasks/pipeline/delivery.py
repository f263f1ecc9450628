"""What the pipeline's hooks see: a request as a worker received it, and how it ended.

Both execution paths build these: batch tasks from each message (tasks/batching.py), Celery's
tracer through its signals (tasks/pipeline/signals.py). Picklable, so batches cross to the pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded

from agents.names import PUBLISH_ID_HEADER, REDELIVERED_HEADER, REPLY_SUBJECT_HEADER, engine_of
from agents.statuses import SUCCESS

# W3C trace context headers (OpenTelemetry's default propagators), kept so a batch task's request
# continues its publisher's trace and the router forwards it to the engine's message.
TRACE_CONTEXT_HEADERS = ("traceparent", "tracestate", "baggage")
# Celery's request fields that chains, chords, errbacks and link callbacks need after a request
# ran (the message's group/root/parent ids and embedded signatures), and the options a batch
# task honours itself (expiry, ignore_result).
CELERY_CONTEXT_FIELDS = (
    "group", "group_index", "root_id", "parent_id", "expires", "ignore_result",
    "callbacks", "errbacks", "chain", "chord",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request as a worker received it."""

    id: str
    task: str  # the task name
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    priority: int | None = None
    queue: str = ""  # the queue it was taken from
    worker: str = ""  # node name of the worker that took it
    events: bool = False  # the worker sends task events (Flower) at the moment
    redelivered: bool = False  # kombu put it back on the queue before (requeue, worker lost)
    headers: dict[str, Any] = field(default_factory=dict)  # agents_* and trace context headers
    celery: dict[str, Any] = field(default_factory=dict)  # CELERY_CONTEXT_FIELDS that are set

    @property
    def engine(self) -> str | None:
        """The engine whose task this is (None for the router and maintenance jobs)."""
        return engine_of(self.task)

    @property
    def request(self) -> Any:
        """The raw request: the task's first argument."""
        return self.args[0] if self.args else None

    @property
    def reply_subject(self) -> str | None:
        """NATS subject awaiting this request's result (a bridged event's Reply-To)."""
        return self.headers.get(REPLY_SUBJECT_HEADER) or None

    @property
    def publish_id(self) -> str | None:
        """Id of this published message (bridged tasks), for the duplicate-publish claim."""
        return self.headers.get(PUBLISH_ID_HEADER) or None


def delivery_from_fields(
    task_name: str, fields: dict[str, Any], info: dict[str, Any], *, worker: str = "", events: bool = False
) -> Delivery:
    """A Delivery from Celery's request fields (message headers, embed, args and kwargs, as a
    task's request context holds them) and the message's delivery info."""
    headers = {k: v for k, v in fields.items() if k.startswith("agents_") and v is not None}
    for name in TRACE_CONTEXT_HEADERS:
        if (value := fields.get(name)) is not None:
            headers[name] = value
    return Delivery(
        id=fields["id"],
        task=task_name,
        args=tuple(fields.get("args") or ()),
        kwargs=dict(fields.get("kwargs") or {}),
        retries=int(fields.get("retries") or 0),
        priority=info.get("priority"),
        queue=str(info.get("routing_key") or ""),
        worker=worker or str(fields.get("hostname") or ""),
        events=events,
        redelivered=bool(info.get(REDELIVERED_HEADER) or fields.get(REDELIVERED_HEADER)),
        headers=headers,
        # Unset fields stay out, so most requests carry none.
        celery={k: v for k in CELERY_CONTEXT_FIELDS if _is_set(v := fields.get(k))},
    )


def _is_set(value: Any) -> bool:
    # Not `value not in (None, False, ...)`: 0 == False, and group_index 0 is a chord's first part.
    if value is None or value is False:
        return False
    return not (isinstance(value, list | tuple) and not value)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one request ended: SUCCESS, FAILED, REJECTED, REVOKED, or RETRYING (runs again)."""

    delivery: Delivery
    status: str
    result: Any = None
    error: BaseException | None = None
    runtime: float | None = None  # seconds from start to end of its run; None: it never ran
    countdown: float | None = None  # RETRYING: seconds until it runs again
    # Celery's tracer ran it (per-request engines, beat jobs) and already stored its result,
    # sent its events and ran its callbacks: hooks marked `tracer_does_it` skip it.
    by_tracer: bool = False

    @property
    def ok(self) -> bool:
        """The request succeeded."""
        return self.status == SUCCESS

    @property
    def reason(self) -> str | None:
        """The error as the history stores it, or None."""
        return None if self.error is None else describe_failure(self.error)


@dataclass(frozen=True, slots=True)
class Published:
    """A task message handed to the broker, as its publisher saw it."""

    task_id: str
    task: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = ""  # the routing key it was sent with (the queue's name)


def describe_failure(exception: BaseException) -> str:
    """The reason stored in `error`: exception type and message, time limits spelled out."""
    if isinstance(exception, TimeLimitExceeded):
        limit = exception.args[0] if exception.args else "?"
        return f"TimeLimitExceeded: hard time limit ({limit}s) exceeded"
    if isinstance(exception, SoftTimeLimitExceeded):
        return "SoftTimeLimitExceeded: soft time limit exceeded"
    if isinstance(exception, TaskRevokedError):
        return f"revoked: {exception}"
    return f"{type(exception).__name__}: {exception}"
