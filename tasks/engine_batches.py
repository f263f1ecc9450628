"""Engines with `batch_size > 1` (the high-throughput profile) run their requests a batch at a time.

Each request keeps its own task id, result, retries and history row; what is shared per batch is
the Redis round trips: one RPUSH of "processing" events, one pipeline of results, one of
lifecycle outcomes and one of breaker samples. The batch's soft time limit fails the request it
interrupts and sends the rest back to the queue; a hard time limit fails the whole batch.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from celery import Task, signature, states
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval

from agents.base import BaseAgent
from agents.connections import breakers, redis_client
from agents.errors import TransientError
from agents.execution import execute
from agents.names import engine_task_name
from agents.publisher import PUBLISH_ID_HEADER
from agents.recorder import record_many
from db.claims import claim
from db.models import FAILED, PROCESSING, RETRYING, SUCCESS
from tasks.app import app
from tasks.batching import BatchItem
from tasks.lifecycle import describe_failure
from tasks.results import store_results
from tasks.task_events import OutcomeEvents, publish_task_events

log = structlog.get_logger("agents.engine_batches")
# Shared with the per-request engine tasks (tasks/engine_tasks.py): one retry policy.
RETRY_BACKOFF_MAX_SECONDS = 60


class _Outcomes:
    """What one batch produced, written to Redis together at its end."""

    def __init__(self, task_name: str) -> None:
        self.results: list[tuple[str, str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.samples: list[tuple[bool, float]] = []
        self.followups: list[tuple[BatchItem, Any]] = []  # successes with link callbacks or a chain
        self.task_events = OutcomeEvents(task_name)

    def success(self, item: BatchItem, value: Any, runtime: float) -> None:
        now = time.time()
        self.results.append((item.id, states.SUCCESS, value))
        self.task_events.succeeded(item, value, runtime)
        if item.embed.get("callbacks") or item.embed.get("chain"):
            self.followups.append((item, value))
        self.events.append(
            {"task_id": item.id, "status": SUCCESS, "finished_at": now, "runtime": runtime,
             "result": value, "worker": item.worker, "at": now}
        )  # fmt: skip

    def failure(self, item: BatchItem, exc: BaseException, runtime: float | None) -> None:
        now = time.time()
        self.results.append((item.id, states.FAILURE, exc))
        self.task_events.failed(item, exc)
        self.events.append(
            {"task_id": item.id, "status": FAILED, "finished_at": now, "runtime": runtime,
             "error": describe_failure(exc), "at": now}
        )  # fmt: skip

    def write(self, engine: str) -> None:
        store_results(app, self.results)
        record_many(redis_client(), self.events)
        if breakers().record_many(engine, self.samples):
            log.warning("breaker_open", engine=engine)
        publish_task_events(self.task_events)
        for item, value in self.followups:
            _continue(item, value)


def run_engine_batch(task: Task, engine: BaseAgent, items: list[BatchItem]) -> list[str]:
    """Run each item through the engine; returns the ids to send back to the queue."""
    assert engine.config is not None
    started_at = time.time()
    record_many(
        redis_client(),
        [
            {"task_id": i.id, "status": PROCESSING, "task_name": task.name, "engine": engine.name,
             "started_at": started_at, "worker": i.worker, "retries": i.retries, "at": started_at}
            for i in items
        ],
    )  # fmt: skip
    out = _Outcomes(task.name)
    requeue: list[str] = []
    for index, item in enumerate(items):
        publish_id = item.headers.get(PUBLISH_ID_HEADER)
        if publish_id and not claim(item.id, publish_id):
            log.info("duplicate_bridged_task_skipped", task_id=item.id)
            continue
        began = time.perf_counter()
        try:
            value = execute(engine, item.args[0] if item.args else None, task_id=item.id, samples=out.samples)
        except SoftTimeLimitExceeded as exc:
            out.failure(item, exc, time.perf_counter() - began)
            requeue = [later.id for later in items[index + 1 :]]
            break
        except TransientError as exc:
            if item.retries < engine.config.max_retries:
                _retry(task, item, exc, out)
            else:
                out.failure(item, exc, time.perf_counter() - began)
        except Exception as exc:
            out.failure(item, exc, time.perf_counter() - began)
        else:
            out.success(item, value, time.perf_counter() - began)
    out.write(engine.name)
    return requeue


def _retry(task: Task, item: BatchItem, exc: TransientError, out: _Outcomes) -> None:
    # The same policy as the per-request tasks: exponential backoff with full jitter.
    countdown = get_exponential_backoff_interval(1, item.retries, RETRY_BACKOFF_MAX_SECONDS, True)
    task.apply_async(
        item.args,
        item.kwargs,
        task_id=item.id,
        retries=item.retries + 1,
        countdown=countdown,
        priority=item.priority,
        headers=item.headers,
        **item.embed,
    )
    out.task_events.retried(item, exc)
    now = time.time()
    out.events.append(
        {"task_id": item.id, "status": RETRYING, "retries": item.retries + 1,
         "error": f"retry: {describe_failure(exc)}"[:2000], "at": now}
    )  # fmt: skip


def _continue(item: BatchItem, value: Any) -> None:
    # What Celery's tracer does after a success: link callbacks get the result, then the chain's
    # next step. (Errbacks and chords are not run for batch engines: see the README.)
    for callback in item.embed.get("callbacks") or ():
        signature(callback, app=app).apply_async((value,), parent_id=item.id, priority=item.priority)
    chain = item.embed.get("chain")
    if chain:
        following = signature(chain[-1], app=app)
        following.apply_async((value,), chain=chain[:-1], parent_id=item.id, priority=item.priority)


def fail_batch(engine: str, items: list[BatchItem], exc: BaseException) -> None:
    """Record every item of a batch that died (hard time limit) as failed."""
    failed = _Outcomes(engine_task_name(engine))
    for item in items:
        failed.failure(item, exc, None)
    failed.write(engine)
