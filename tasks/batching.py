"""Batch tasks: the worker's main process buffers a task's messages and hands the pool one call
per batch instead of one per message.

Per message, a Celery prefork worker builds a Request, sends task events, pickles the call to a
child through a pipe, runs the tracer and pickles the outcome back: about 2-3 ms of CPU on this
project's machines, most of a 1,000 req/s budget on 2 cores. A batch pays those costs once. The
idea is celery-batches' (BSD); that package pins celery<5.7, so this is a smaller version with the
platform's semantics: acks after the batch ran (acks_late), the task's soft and hard time limits
apply to each batch, revoked and expired ids are dropped before they run, messages a batch could
not start (soft time limit reached) go back to the queue, and redelivered messages run alone and
one at a time, so a poison message that kills its pool process takes no neighbour with it.

The task function receives a list of Delivery and returns the ids to requeue; every outcome goes
through the pipeline's hooks (tasks/pipeline). Callers still publish one message per request.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from billiard.exceptions import WorkerLostError
from celery import Celery, Task
from celery.exceptions import TaskRevokedError, TimeLimitExceeded
from kombu.message import Message

from agents.errors import UnsupportedOption
from agents.statuses import FAILED, REVOKED
from tasks.internals.billiard import unwrap
from tasks.internals.celery import is_revoked, prefetch_restored, rate_limit_bucket
from tasks.outage import UNREACHABLE
from tasks.pipeline.delivery import Delivery, Outcome, delivery_from_fields
from tasks.pipeline.registry import pipeline
from tasks.refusals import reason_of, refused
from tasks.transport import ack_many

log = structlog.get_logger("agents.batching")
_logger = logging.getLogger("agents.batching")

# Messages buffered before a batch is handed to the pool without waiting for the timer.
DEFAULT_FLUSH_EVERY = 100
# The longest a buffered message waits for more to join its batch (latency at low load).
DEFAULT_FLUSH_INTERVAL = 0.005
# After a pool process died, nothing is handed to the pool for this long: a job sent at once can
# land with the process that just died and sit there until the hard time limit fails it (seen
# with celery 5.7, billiard 4.3.2, concurrency 1), taking innocent requests with it.
POOL_RECOVERY_SECONDS = 1.0

# Requests of batch tasks handed to the pool and not settled yet, in this worker (the heartbeat
# reports it with Celery's own active requests as celery_worker_tasks_active).
_in_pool = 0


def requests_in_pool() -> int:
    """Requests of batch tasks this worker's pool is running now."""
    return _in_pool


@dataclass(slots=True)
class _Entry:
    delivery: Delivery
    message: Message
    ack: Callable[..., Any]
    reject: Callable[..., Any]


# Celery options a batch task cannot honour, and what to do instead: refused at publish by this
# class's apply_async. (A message's `timelimit` header cannot tell a caller's limit from the
# defaults Celery's send_task puts in every message, so the worker applies the task's own.)
UNSUPPORTED_OPTIONS = {
    "time_limit": "a batch runs under its task's time limits; give the request a `timeout` (seconds)",
    "soft_time_limit": "a batch runs under its task's time limits; give the request a `timeout` (seconds)",
}


class BatchTask(Task):
    """Base class of batch tasks; `flush_every` and `flush_interval` size the batches."""

    abstract = True
    # The function takes a list of deliveries, callers pass one request: skip the signature check.
    typing = False
    flush_every: int = DEFAULT_FLUSH_EVERY
    flush_interval: float = DEFAULT_FLUSH_INTERVAL

    def Strategy(self, task: Task, app: Celery, consumer: Any) -> Callable[..., None]:
        """Celery's hook for what to do with each received message (here: buffer it)."""
        return _Batcher(self, consumer).on_message

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Publish one request, as Task.apply_async does; refuses options a batch cannot honour."""
        for name, instead in UNSUPPORTED_OPTIONS.items():
            if options.get(name) is not None:
                raise UnsupportedOption(
                    f"{self.name} runs requests in batches: {name} is not supported; {instead}"
                )
        return super().apply_async(args, kwargs, **options)


def delivery_of(message: Message, body: Any, worker: str, events: bool) -> Delivery:
    """The Delivery of one task message (protocol 2: headers, then args, kwargs and embed)."""
    headers = message.headers or {}
    args, kwargs, embed = message.decode() if body is None else body
    fields = headers | (embed or {}) | {"args": args, "kwargs": kwargs}
    info = (message.delivery_info or {}) | {"priority": (message.properties or {}).get("priority")}
    return delivery_from_fields(headers["task"], fields, info, worker=worker, events=events)


class _Batcher:
    """Lives in the worker's main process: buffers, flushes to the pool, settles the messages."""

    def __init__(self, task: BatchTask, consumer: Any) -> None:
        self.task = task
        self.consumer = consumer
        self.pool = consumer.pool
        self.timer = consumer.timer
        self.connection_errors = consumer.connection_errors
        self.hostname = consumer.hostname
        self.buffer: list[_Entry] = []
        self.timer_armed = False
        # Redelivered messages run one at a time, each alone: a poison that kills its pool
        # process then takes no neighbour with it, not even one queued behind it in the pool.
        self.quarantine: deque[_Entry] = deque()
        self.quarantine_busy = False
        self.resume_at = 0.0  # monotonic time before which the pool gets nothing (see above)

    def on_message(
        self, message: Message, body: Any, ack: Any, reject: Any, callbacks: Any, **_: Any
    ) -> None:
        dispatcher = self.consumer.event_dispatcher
        try:
            delivery = delivery_of(message, body, self.hostname, bool(dispatcher and dispatcher.enabled))
        except Exception as exc:  # a message we cannot read will not get better by retrying
            log.error("batch_message_undecodable", task=self.task.name, error=repr(exc))
            reject(_logger, self.connection_errors, False)
            refused(self.consumer, message, reason_of(exc))  # e.g. a pickle body: never loaded
            return
        entry = _Entry(delivery, message, ack, reject)
        eta = _when((message.headers or {}).get("eta"))
        if eta is not None:
            self.timer.call_after(max(0.0, (eta - datetime.now(UTC)).total_seconds()), self._add, (entry,))
            return
        self._add(entry)

    def _add(self, entry: _Entry) -> None:
        if entry.delivery.redelivered:
            self.quarantine.append(entry)
            self._next_quarantined()
            return
        self.buffer.append(entry)
        if len(self.buffer) >= self.task.flush_every:
            self.flush()
        elif not self.timer_armed:
            self.timer_armed = True
            self.timer.call_after(self.task.flush_interval, self.flush)

    def flush(self) -> None:
        self.timer_armed = False
        entries, self.buffer = self.buffer, []
        self._run(self._within_rate_limit(entries))

    def _within_rate_limit(self, entries: list[_Entry]) -> list[_Entry]:
        # `celery control rate_limit` sets the task's token bucket, as for any task: requests
        # beyond it wait in the buffer (still reserved, not acked) until tokens come back.
        bucket = rate_limit_bucket(self.consumer, self.task.name)
        if bucket is None:
            return entries
        allowed = 0
        while allowed < len(entries) and bucket.can_consume(1):
            allowed += 1
        if allowed < len(entries):
            self.buffer = entries[allowed:] + self.buffer
            if not self.timer_armed:
                self.timer_armed = True
                self.timer.call_after(max(bucket.expected_time(1), self.task.flush_interval), self.flush)
        return entries[:allowed]

    def _next_quarantined(self) -> None:
        if self.quarantine and not self.quarantine_busy:
            self.quarantine_busy = True
            self._run([self.quarantine.popleft()], then=self._quarantined_done)

    def _quarantined_done(self) -> None:
        self.quarantine_busy = False
        self._next_quarantined()

    def _run(self, entries: list[_Entry], then: Callable[[], None] | None = None) -> None:
        wait = self.resume_at - time.monotonic()
        if wait > 0:
            self.timer.call_after(wait, self._run, (entries, then))
            return
        verdicts = [(e, _not_to_run(e.delivery)) for e in entries]
        dropped = [(e, why) for e, why in verdicts if why is not None]
        if dropped:
            self._drop(dropped)
            entries = [e for e, why in verdicts if why is None]
        if not entries:
            if then is not None:
                then()
            return

        def settled(requeue: list[str]) -> None:
            _left_pool(len(entries))
            self._settle(entries, set(requeue))
            if then is not None:
                then()

        def lost(einfo: Any) -> None:
            _left_pool(len(entries))
            self._lost(entries, einfo)
            if then is not None:
                then()

        global _in_pool
        _in_pool += len(entries)
        task = self.task
        self.pool.apply_async(
            run_batch_in_child,
            args=(task.name, [e.delivery for e in entries]),
            callback=settled,
            error_callback=lost,
            soft_timeout=task.soft_time_limit,
            timeout=task.time_limit,
        )

    def _drop(self, dropped: list[tuple[_Entry, TaskRevokedError]]) -> None:
        # As Celery does for a revoked or expired request: never run it, say so in its outcome.
        for entry, _ in dropped:
            entry.ack(_logger, self.connection_errors)
        outcomes = [Outcome(e.delivery, REVOKED, error=why) for e, why in dropped]
        try:
            pipeline().after_process(outcomes)
        except UNREACHABLE as exc:
            log.warning("revoked_not_recorded", count=len(outcomes), error=repr(exc))

    def _settle(self, entries: list[_Entry], requeue: set[str]) -> None:
        done = [e.message for e in entries if e.delivery.id not in requeue]
        if not requeue and prefetch_restored(self.consumer) and ack_many(done):
            return
        for entry in entries:
            if entry.delivery.id in requeue:
                entry.reject(_logger, self.connection_errors, True)
            else:
                entry.ack(_logger, self.connection_errors)

    def _lost(self, entries: list[_Entry], einfo: Any) -> None:
        exc = unwrap(getattr(einfo, "exception", einfo))
        deliveries = [e.delivery for e in entries]
        log.error("batch_lost", task=self.task.name, size=len(deliveries), error=repr(exc))
        if isinstance(exc, WorkerLostError):
            self.resume_at = time.monotonic() + POOL_RECOVERY_SECONDS
            # Same as task_reject_on_worker_lost: the process died (OOM, kill), run them again;
            # each comes back redelivered, runs alone and is counted towards TASK_MAX_DELIVERIES.
            self._settle(entries, {d.id for d in deliveries})
            return
        if isinstance(exc, TimeLimitExceeded):
            try:
                pipeline().after_process([Outcome(d, FAILED, error=exc) for d in deliveries])
            except Exception as record_exc:
                log.error("batch_lost_not_recorded", task=self.task.name, error=repr(record_exc))
        self._settle(entries, set())


def _left_pool(count: int) -> None:
    global _in_pool
    _in_pool = max(0, _in_pool - count)


def _when(value: Any) -> datetime | None:
    """A message header's ISO 8601 time (UTC when naive), or None when it holds no time."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):  # a bad header must not break the consumer: ignore it
        log.warning("batch_message_bad_time", value=repr(value)[:100])
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _not_to_run(delivery: Delivery) -> TaskRevokedError | None:
    """Why a request must not run (None when it may): revoked, or past its expiry."""
    if is_revoked(delivery.id):
        return TaskRevokedError("revoked before it ran")
    expires = _when(delivery.celery.get("expires"))
    if expires is not None and expires <= datetime.now(UTC):
        return TaskRevokedError("expired")
    if any(delivery.celery.get("timelimit") or ()):
        reason = UNSUPPORTED_OPTIONS["time_limit"]
        return UnsupportedOption(
            f"{delivery.task} runs requests in batches: time limits per call are not supported; {reason}"
        )
    return None


def run_batch_in_child(task_name: str, deliveries: Sequence[Delivery]) -> list[str]:
    """Pool entry point: run one batch; returns the ids whose messages go back to the queue."""
    from tasks.app import app

    task = app.tasks[task_name]
    try:
        return list(task.run(deliveries))
    except UNREACHABLE as exc:  # the broker or a store is away: the batch runs again later
        log.error("batch_interrupted", task=task_name, size=len(deliveries), error=repr(exc))
        return [d.id for d in deliveries]
    except Exception as exc:  # a bug would fail again on every redelivery: fail the batch once
        log.exception("batch_failed", task=task_name, size=len(deliveries), error=repr(exc))
        pipeline().after_process([Outcome(d, FAILED, error=exc) for d in deliveries])
        return []
