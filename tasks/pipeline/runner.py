"""Runs engine requests through the pipeline: guards, the handler, the outcome, the hooks.

`run_engine_batch` is a batch engine's whole task; per-request engines apply the same guards
and `retry_after` inside Celery's tracer (tasks/engine_tasks.py) and reach the hooks through
tasks/pipeline/signals.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from celery.exceptions import SoftTimeLimitExceeded

from agents.base import BaseAgent
from agents.errors import TransientError
from agents.execution import execute
from agents.retry_policy import retry_countdown
from agents.statuses import FAILED, RETRYING, SUCCESS
from tasks.pipeline.delivery import Delivery, Outcome
from tasks.pipeline.guards import admit
from tasks.pipeline.registry import pipeline


def retry_after(exc: BaseException, retries: int, max_retries: int) -> float | None:
    """Seconds until a failed request runs again, or None when its failure is final: only a
    TransientError with retries left is retried (the one retry policy, both paths)."""
    if not isinstance(exc, TransientError):
        return None
    return retry_countdown(retries, max_retries)


def run_request(engine: BaseAgent, delivery: Delivery) -> Outcome:
    """Run one request's handler; its outcome is SUCCESS, FAILED or RETRYING."""
    assert engine.config is not None  # nosec B101 # narrows the type for mypy, not a check
    began = time.perf_counter()
    try:
        value = execute(engine, delivery.request, task_id=delivery.id)
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        runtime = time.perf_counter() - began
        countdown = retry_after(exc, delivery.retries, engine.config.max_retries)
        if countdown is None:
            return Outcome(delivery, FAILED, error=exc, runtime=runtime)
        return Outcome(delivery, RETRYING, error=exc, runtime=runtime, countdown=countdown)
    return Outcome(delivery, SUCCESS, result=value, runtime=time.perf_counter() - began)


def run_engine_batch(engine: BaseAgent, deliveries: Sequence[Delivery]) -> list[str]:
    """Run a batch of requests; returns the ids to send back to the queue.

    The soft time limit fails the request it interrupts and sends the rest of the batch back.
    """
    steps = pipeline()
    admission = admit(deliveries)
    steps.after_skip(admission.duplicates, "duplicate publish of a bridged task")
    steps.before_process(admission.run)
    outcomes = list(admission.refused)
    requeue: list[str] = []
    for index, delivery in enumerate(admission.run):
        began = time.perf_counter()
        try:
            outcomes.append(run_request(engine, delivery))
        except SoftTimeLimitExceeded as exc:
            outcomes.append(Outcome(delivery, FAILED, error=exc, runtime=time.perf_counter() - began))
            requeue = [later.id for later in admission.run[index + 1 :]]
            break
    steps.after_process(outcomes)
    return requeue
