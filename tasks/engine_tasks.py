"""One Celery task per engine in the catalog, on the engine's own queue with its time limits.

An engine with `batch_size` 1 runs one request per task execution, inside Celery's tracer; one
with a larger `batch_size` runs as a batch task (tasks/batching.py). Both go through the same
pipeline (tasks/pipeline): the same guards, retry policy and hooks.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.exceptions import Ignore

from agents.base import BaseAgent
from agents.catalog import engines
from agents.errors import PermanentError
from agents.execution import execute
from agents.limits import hard_limit, soft_limit
from agents.names import engine_task_name
from tasks.app import app
from tasks.batching import POOL_RECOVERY_SECONDS, BatchTask
from tasks.pipeline.delivery import Delivery
from tasks.pipeline.guards import admit
from tasks.pipeline.registry import pipeline
from tasks.pipeline.runner import retry_after, run_engine_batch
from tasks.pipeline.signals import traced_delivery


def register_engine_task(engine: BaseAgent) -> Task:
    """Create and register the Celery task that runs `engine`'s handler."""
    config = engine.config
    assert config is not None  # nosec B101 # narrows the type for mypy, not a check
    hard = hard_limit(config.task_timeout_seconds)
    options: dict[str, Any] = {
        "name": engine_task_name(engine.name),
        "queue": engine.name,
        "soft_time_limit": soft_limit(hard),
        "time_limit": hard,
        "throws": (PermanentError,),
    }
    if config.batch_size > 1:

        def run_batch(deliveries: list[Delivery]) -> list[str]:
            return run_engine_batch(engine, deliveries)

        run_batch.__doc__ = (
            f"Run engine {engine.name!r} ({', '.join(engine.capabilities)}), a batch at a time."
        )
        batch_task: Task = app.task(base=BatchTask, flush_every=config.batch_size, **options)(run_batch)
        return batch_task

    def run_engine(self: Task, request: dict[str, Any], decision: dict[str, Any] | None = None) -> Any:
        admission = admit([traced_delivery(self)], by_tracer=True)
        if admission.duplicates:
            # The bridge published this task twice (crash before its marker): one effect only.
            pipeline().after_skip(admission.duplicates, "duplicate publish of a bridged task", by_tracer=True)
            raise Ignore()
        if admission.refused:
            raise admission.refused[0].error  # type: ignore[misc]  # a refusal always has its error
        try:
            return execute(engine, request, task_id=self.request.id)
        except Exception as exc:
            countdown = retry_after(exc, self.request.retries, config.max_retries)
            if countdown is None:
                raise
            raise self.retry(exc=exc, countdown=countdown, max_retries=config.max_retries) from None

    run_engine.__doc__ = f"Run engine {engine.name!r} ({', '.join(engine.capabilities)})."
    task: Task = app.task(
        bind=True,
        max_retries=config.max_retries,
        # A request whose pool process died (OOM, a poison payload) runs again after a pause, as a
        # retry within max_retries; the last loss fails it with WorkerLostError. Requeued at once
        # instead, it can reach the pool before the dead process is replaced and sit there until
        # its hard time limit (seen with celery 5.7, billiard 4.3.2): the pause avoids that.
        retry_on_worker_lost=True,
        default_retry_delay=POOL_RECOVERY_SECONDS,
        **options,
    )(run_engine)
    return task


ENGINE_TASKS: dict[str, Task] = {name: register_engine_task(e) for name, e in engines().items()}


def engine_task(name: str) -> Task:
    """The Celery task of engine `name` (for direct `.delay()` calls)."""
    try:
        return ENGINE_TASKS[name]
    except KeyError:
        raise KeyError(f"no engine named {name!r}; known: {', '.join(sorted(ENGINE_TASKS))}") from None
