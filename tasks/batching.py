"""Batch tasks: the worker's main process buffers a task's messages and hands the pool one call
per batch instead of one per message.

Per message, a Celery prefork worker builds a Request, sends task events, pickles the call to a
child through a pipe, runs the tracer and pickles the outcome back: about 2-3 ms of CPU on this
project's machines, most of a 1,000 req/s budget on 2 cores. A batch pays those costs once. The
idea is celery-batches' (BSD); that package pins celery<5.7, so this is a smaller version with the
platform's semantics: acks after the batch ran (acks_late), the task's soft and hard time limits
apply to each batch, revoked and expired ids are dropped before they run, messages a batch could
not start (soft time limit reached) go back to the queue, and a redelivered message runs in a
batch of its own, so a poison message that kills its pool process takes no neighbour with it.

The task function receives a list of Delivery and returns the ids to requeue; every outcome goes
through the pipeline's hooks (tasks/pipeline). Callers still publish one message per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from billiard.exceptions import WorkerLostError
from celery import Celery, Task
from celery.exceptions import TaskRevokedError, TimeLimitExceeded
from kombu.message import Message

from agents.names import REDELIVERED_HEADER
from agents.statuses import FAILED, REVOKED
from tasks.internals.billiard import unwrap
from tasks.internals.celery import is_revoked, prefetch_restored
from tasks.outage import UNREACHABLE
from tasks.pipeline.delivery import CELERY_CONTEXT_FIELDS, Delivery, Outcome
from tasks.pipeline.registry import pipeline
from tasks.transport import ack_many

log = structlog.get_logger("agents.batching")
_logger = logging.getLogger("agents.batching")

# Messages buffered before a batch is handed to the pool without waiting for the timer.
DEFAULT_FLUSH_EVERY = 100
# The longest a buffered message waits for more to join its batch (latency at low load).
DEFAULT_FLUSH_INTERVAL = 0.005


@dataclass(slots=True)
class _Entry:
    delivery: Delivery
    message: Message
    ack: Callable[..., Any]
    reject: Callable[..., Any]


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


def delivery_of(message: Message, body: Any, worker: str, events: bool) -> Delivery:
    """The Delivery of one task message (protocol 2: headers, then args, kwargs and embed)."""
    headers = message.headers or {}
    args, kwargs, embed = message.decode() if body is None else body
    info = message.delivery_info or {}
    embed = embed or {}
    celery = {}
    for name in CELERY_CONTEXT_FIELDS:
        value = headers.get(name, embed.get(name))
        if value not in (None, [], ()):  # group_index 0 is a value
            celery[name] = value
    return Delivery(
        id=headers["id"],
        task=headers["task"],
        args=tuple(args),
        kwargs=dict(kwargs or {}),
        retries=int(headers.get("retries") or 0),
        priority=(message.properties or {}).get("priority"),
        queue=str(info.get("routing_key") or ""),
        worker=worker,
        events=events,
        redelivered=bool(headers.get(REDELIVERED_HEADER) or info.get(REDELIVERED_HEADER)),
        headers={k: v for k, v in headers.items() if k.startswith("agents_")},
        celery=celery,
    )


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

    def on_message(
        self, message: Message, body: Any, ack: Any, reject: Any, callbacks: Any, **_: Any
    ) -> None:
        dispatcher = self.consumer.event_dispatcher
        try:
            delivery = delivery_of(message, body, self.hostname, bool(dispatcher and dispatcher.enabled))
        except Exception as exc:  # a message we cannot read will not get better by retrying
            log.error("batch_message_undecodable", task=self.task.name, error=repr(exc))
            reject(_logger, self.connection_errors, False)
            return
        entry = _Entry(delivery, message, ack, reject)
        eta = (message.headers or {}).get("eta")
        if eta:
            self.timer.call_after(_seconds_until(eta), self._add, (entry,))
            return
        self._add(entry)

    def _add(self, entry: _Entry) -> None:
        if entry.delivery.redelivered:
            self._run([entry])  # alone: if it is what killed the last pool process, only it dies
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
        self._run(entries)

    def _run(self, entries: list[_Entry]) -> None:
        verdicts = [(e, _not_to_run(e.delivery)) for e in entries]
        dropped = [(e, why) for e, why in verdicts if why]
        if dropped:
            self._drop(dropped)
            entries = [e for e, why in verdicts if not why]
        if not entries:
            return
        task = self.task
        self.pool.apply_async(
            run_batch_in_child,
            args=(task.name, [e.delivery for e in entries]),
            callback=lambda requeue: self._settle(entries, set(requeue)),
            error_callback=lambda einfo: self._lost(entries, einfo),
            soft_timeout=task.soft_time_limit,
            timeout=task.time_limit,
        )

    def _drop(self, dropped: list[tuple[_Entry, str]]) -> None:
        # As Celery does for a revoked or expired request: never run it, say so in its outcome.
        for entry, _ in dropped:
            entry.ack(_logger, self.connection_errors)
        outcomes = [Outcome(e.delivery, REVOKED, error=TaskRevokedError(why)) for e, why in dropped]
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


def _seconds_until(eta: str) -> float:
    when = datetime.fromisoformat(eta)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - datetime.now(UTC).timestamp())


def _not_to_run(delivery: Delivery) -> str:
    """Why a request must not run ("" when it may): revoked, or past its expiry."""
    if is_revoked(delivery.id):
        return "revoked before it ran"
    expires = delivery.celery.get("expires")
    if expires and _seconds_until(expires) <= 0:
        return "expired"
    return ""


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
