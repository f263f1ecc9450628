"""Batch tasks: the worker's main process buffers a task's messages and hands the pool one call
per batch instead of one per message.

Per message, a Celery prefork worker builds a Request, sends task events, pickles the call to a
child through a pipe, runs the tracer and pickles the outcome back: about 2-3 ms of CPU on this
project's machines, most of a 1,000 req/s budget on 2 cores. A batch pays those costs once. The
idea is celery-batches' (BSD); that package pins celery<5.7, so this is a smaller version with the
platform's semantics: acks after the batch ran (acks_late), the task's soft and hard time limits
apply to each batch, revoked ids are dropped before they run, and messages a batch could not
start (soft time limit reached) go back to the queue.

The task function receives a list of BatchItem and returns the ids to requeue. Callers still
publish one message per request with `.delay(request)`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
import structlog
from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery import Celery, Task
from celery.exceptions import TimeLimitExceeded
from celery.worker.state import revoked
from kombu.exceptions import OperationalError
from kombu.message import Message

from agents.connections import redis_client
from agents.recorder import record
from db.models import REVOKED
from tasks.transport import ack_many

log = structlog.get_logger("agents.batching")
_logger = logging.getLogger("agents.batching")

# Errors that mean "try again later" rather than "this batch is broken".
CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, OperationalError, OSError)
# Messages buffered before a batch is handed to the pool without waiting for the timer.
DEFAULT_FLUSH_EVERY = 100
# The longest a buffered message waits for more to join its batch (latency at low load).
DEFAULT_FLUSH_INTERVAL = 0.005


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One message of a batch: what the batch function needs of it (picklable for prefork)."""

    id: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    retries: int = 0
    priority: int | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    worker: str = ""  # node name of the worker that took the message
    events: bool = False  # the worker sends task events (for Flower) at the moment
    # Celery's callbacks/errbacks/chain/chord of the message, passed on where a task forwards it.
    embed: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Entry:
    item: BatchItem
    message: Message
    ack: Callable[..., Any]
    reject: Callable[..., Any]


class BatchTask(Task):
    """Base class of batch tasks; `flush_every` and `flush_interval` size the batches."""

    abstract = True
    # The function takes a list of items, callers pass one request: skip the signature check.
    typing = False
    flush_every: int = DEFAULT_FLUSH_EVERY
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    # Records every item of a batch as failed: after a hard time limit (main process) or an
    # unexpected error (pool process).
    on_batch_lost: Callable[[list[BatchItem], BaseException], None] | None = None

    def Strategy(self, task: Task, app: Celery, consumer: Any) -> Callable[..., None]:
        """Celery's hook for what to do with each received message (here: buffer it)."""
        return _Batcher(self, consumer).on_message


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
        headers = message.headers or {}
        try:
            args, kwargs, embed = message.decode() if body is None else body
        except Exception as exc:  # a message we cannot read will not get better by retrying
            log.error("batch_message_undecodable", task=self.task.name, error=repr(exc))
            reject(_logger, self.connection_errors, False)
            return
        item = BatchItem(
            id=headers["id"],
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            retries=int(headers.get("retries") or 0),
            priority=(message.properties or {}).get("priority"),
            headers={k: v for k, v in headers.items() if k.startswith("agents_")},
            worker=self.hostname,
            events=bool(self.consumer.event_dispatcher and self.consumer.event_dispatcher.enabled),
            embed={k: v for k, v in (embed or {}).items() if v},
        )
        entry = _Entry(item, message, ack, reject)
        eta = headers.get("eta")
        if eta:
            self._hold_until(eta, entry)
            return
        self._add(entry)

    def _hold_until(self, eta: str, entry: _Entry) -> None:
        when = datetime.fromisoformat(eta)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = max(0.0, when.timestamp() - datetime.now(UTC).timestamp())
        self.timer.call_after(delay, self._add, (entry,))

    def _add(self, entry: _Entry) -> None:
        self.buffer.append(entry)
        if len(self.buffer) >= self.task.flush_every:
            self.flush()
        elif not self.timer_armed:
            self.timer_armed = True
            self.timer.call_after(self.task.flush_interval, self.flush)

    def flush(self) -> None:
        self.timer_armed = False
        entries, self.buffer = self.buffer, []
        live = []
        for entry in entries:
            if entry.item.id in revoked:
                self._drop_revoked(entry)
            else:
                live.append(entry)
        if not live:
            return
        task = self.task
        self.pool.apply_async(
            run_batch_in_child,
            args=(task.name, [e.item for e in live]),
            callback=lambda requeue: self._settle(live, set(requeue)),
            error_callback=lambda einfo: self._lost(live, einfo),
            soft_timeout=task.soft_time_limit,
            timeout=task.time_limit,
        )

    def _drop_revoked(self, entry: _Entry) -> None:
        # As Celery does for a revoked request: never run it, say so in its result and history.
        entry.ack(_logger, self.connection_errors)
        try:
            self.task.backend.mark_as_revoked(entry.item.id, "revoked before it ran")
            now = time.time()
            event = {"task_id": entry.item.id, "status": REVOKED, "finished_at": now, "at": now}
            record(redis_client(), event | {"error": "revoked: revoked before it ran"})
        except CONNECTION_ERRORS as exc:
            log.warning("revoked_not_recorded", task_id=entry.item.id, error=repr(exc))

    def _settle(self, entries: list[_Entry], requeue: set[str]) -> None:
        done = [e.message for e in entries if e.item.id not in requeue]
        if not requeue and self.consumer._maximum_prefetch_restored and ack_many(done):
            return
        for entry in entries:
            if entry.item.id in requeue:
                entry.reject(_logger, self.connection_errors, True)
            else:
                entry.ack(_logger, self.connection_errors)

    def _lost(self, entries: list[_Entry], einfo: Any) -> None:
        exc = getattr(einfo, "exception", einfo)
        if isinstance(exc, ExceptionWithTraceback):  # billiard's wrapper, unwrapped as Celery does
            exc = exc.exc
        items = [e.item for e in entries]
        log.error("batch_lost", task=self.task.name, size=len(items), error=repr(exc))
        if isinstance(exc, WorkerLostError):
            # Same as task_reject_on_worker_lost: the process died (OOM, kill), run them again.
            self._settle(entries, {i.id for i in items})
            return
        if isinstance(exc, TimeLimitExceeded) and self.task.on_batch_lost is not None:
            try:
                self.task.on_batch_lost(items, exc)
            except Exception as record_exc:
                log.error("batch_lost_not_recorded", task=self.task.name, error=repr(record_exc))
        self._settle(entries, set())


def run_batch_in_child(task_name: str, items: list[BatchItem]) -> list[str]:
    """Pool entry point: run one batch; returns the ids whose messages go back to the queue."""
    from tasks.app import app

    task = app.tasks[task_name]
    try:
        return list(task.run(items))
    except CONNECTION_ERRORS as exc:  # the broker or a store is away: the batch runs again later
        log.error("batch_interrupted", task=task_name, size=len(items), error=repr(exc))
        return [item.id for item in items]
    except Exception as exc:  # a bug would fail again on every redelivery: fail the batch once
        log.exception("batch_failed", task=task_name, size=len(items), error=repr(exc))
        if task.on_batch_lost is not None:
            task.on_batch_lost(items, exc)
        return []
