"""One Celery task per engine in the catalog, on the engine's own queue with its time limits."""

from __future__ import annotations

from typing import Any

from celery import Task

from agents.base import BaseAgent
from agents.catalog import engines
from agents.errors import PermanentError, TransientError
from agents.execution import execute
from agents.limits import hard_limit, soft_limit
from agents.names import engine_task_name
from tasks.app import app


def register_engine_task(engine: BaseAgent) -> Task:
    """Create and register the Celery task that runs `engine`'s handler."""
    assert engine.config is not None
    hard = hard_limit(engine.config.task_timeout_seconds)

    def run_engine(self: Task, request: dict[str, Any], decision: dict[str, Any] | None = None) -> Any:
        return execute(engine, request, task_id=self.request.id)

    run_engine.__doc__ = f"Run engine {engine.name!r} ({', '.join(engine.capabilities)})."
    task: Task = app.task(
        bind=True,
        name=engine_task_name(engine.name),
        queue=engine.name,
        soft_time_limit=soft_limit(hard),
        time_limit=hard,
        throws=(PermanentError,),
        # The one retry policy: transient errors back off exponentially, permanent ones never retry.
        autoretry_for=(TransientError,),
        retry_backoff=True,
        retry_backoff_max=60,
        retry_jitter=True,
        max_retries=engine.config.max_retries,
    )(run_engine)
    return task


ENGINE_TASKS: dict[str, Task] = {name: register_engine_task(e) for name, e in engines().items()}


def engine_task(name: str) -> Task:
    """The Celery task of engine `name` (for direct `.delay()` calls)."""
    try:
        return ENGINE_TASKS[name]
    except KeyError:
        raise KeyError(f"no engine named {name!r}; known: {', '.join(sorted(ENGINE_TASKS))}") from None
