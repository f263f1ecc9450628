"""One Celery task per engine in the catalog, on the engine's own queue with its time limits."""

from __future__ import annotations

from typing import Any

import structlog
from celery import Task
from celery.exceptions import Ignore

from agents.base import BaseAgent
from agents.catalog import engines
from agents.errors import PermanentError, TransientError
from agents.execution import execute
from agents.limits import hard_limit, soft_limit
from agents.names import engine_task_name
from agents.publisher import PUBLISH_ID_HEADER
from db.claims import claim
from tasks.app import app
from tasks.batching import BatchItem, BatchTask
from tasks.engine_batches import RETRY_BACKOFF_MAX_SECONDS, fail_batch, run_engine_batch

log = structlog.get_logger("agents.engine_tasks")


def register_engine_task(engine: BaseAgent) -> Task:
    """Create and register the Celery task that runs `engine`'s handler."""
    assert engine.config is not None
    hard = hard_limit(engine.config.task_timeout_seconds)
    options: dict[str, Any] = {
        "name": engine_task_name(engine.name),
        "queue": engine.name,
        "soft_time_limit": soft_limit(hard),
        "time_limit": hard,
        "throws": (PermanentError,),
    }
    if engine.config.batch_size > 1:
        return _register_batch_task(engine, options)

    def run_engine(self: Task, request: dict[str, Any], decision: dict[str, Any] | None = None) -> Any:
        publish_id = self.request.get(PUBLISH_ID_HEADER)
        if publish_id and not claim(self.request.id, publish_id):
            # The bridge published this task twice (crash before its marker): one effect only.
            log.info("duplicate_bridged_task_skipped", task_id=self.request.id)
            raise Ignore()
        return execute(engine, request, task_id=self.request.id)

    run_engine.__doc__ = f"Run engine {engine.name!r} ({', '.join(engine.capabilities)})."
    task: Task = app.task(
        bind=True,
        # The one retry policy: transient errors back off exponentially, permanent ones never retry.
        autoretry_for=(TransientError,),
        retry_backoff=True,
        retry_backoff_max=RETRY_BACKOFF_MAX_SECONDS,
        retry_jitter=True,
        max_retries=engine.config.max_retries,
        **options,
    )(run_engine)
    return task


def _register_batch_task(engine: BaseAgent, options: dict[str, Any]) -> Task:
    assert engine.config is not None

    def run_batch(items: list[BatchItem]) -> list[str]:
        return run_engine_batch(task, engine, items)

    def batch_lost(items: list[BatchItem], exc: BaseException) -> None:
        fail_batch(engine.name, items, exc)

    run_batch.__doc__ = f"Run engine {engine.name!r} ({', '.join(engine.capabilities)}), a batch at a time."
    task: Task = app.task(
        base=BatchTask,
        flush_every=engine.config.batch_size,
        on_batch_lost=staticmethod(batch_lost),
        **options,
    )(run_batch)
    return task


ENGINE_TASKS: dict[str, Task] = {name: register_engine_task(e) for name, e in engines().items()}


def engine_task(name: str) -> Task:
    """The Celery task of engine `name` (for direct `.delay()` calls)."""
    try:
        return ENGINE_TASKS[name]
    except KeyError:
        raise KeyError(f"no engine named {name!r}; known: {', '.join(sorted(ENGINE_TASKS))}") from None
