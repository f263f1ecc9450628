"""Results: each outcome of a batch task is stored where `AsyncResult.get()` and Flower read it.

Celery's tracer stores the results of the tasks it runs; batch tasks skip the tracer, so this
hook writes all of a batch's results in one pipeline, in the format of Celery's Redis backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import states
from celery.exceptions import TaskRevokedError

from agents.statuses import FAILED, REJECTED, RETRYING, REVOKED, SUCCESS
from tasks.app import app
from tasks.internals.celery import result_meta
from tasks.pipeline.delivery import Outcome
from tasks.pipeline.hook import Hook

CELERY_STATES = {
    SUCCESS: states.SUCCESS,
    FAILED: states.FAILURE,
    REJECTED: states.FAILURE,
    REVOKED: states.REVOKED,
    RETRYING: states.RETRY,
}


class ResultHook(Hook):
    """Stores a batch's results (and wakes callers waiting in `.get()`) in one round trip."""

    tracer_does_it = True

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        store_results(
            [
                (o.delivery.id, CELERY_STATES[o.status], _value(o))
                for o in outcomes
                if not o.delivery.celery.get("ignore_result")
            ]
        )


def _value(outcome: Outcome) -> Any:
    if outcome.status == SUCCESS:
        return outcome.result
    if outcome.status == REVOKED and not isinstance(outcome.error, TaskRevokedError):
        return TaskRevokedError(outcome.reason or "revoked")
    return outcome.error


def store_results(outcomes: Sequence[tuple[str, str, Any]]) -> None:
    """Store (task id, Celery state, result or exception) for each and notify waiting callers."""
    if not outcomes:
        return
    backend = app.backend
    pipe = backend.client.pipeline(transaction=False)
    for task_id, state, value in outcomes:
        # The same steps as the backend's own store_result: exceptions become JSON-safe dicts.
        meta = result_meta(backend, backend.encode_result(value, state), state)
        meta["task_id"] = task_id
        encoded = backend.encode(meta)
        key = backend.get_key_for_task(task_id)
        if backend.expires:
            pipe.setex(key, backend.expires, encoded)
        else:
            pipe.set(key, encoded)
        pipe.publish(key, encoded)  # wakes callers blocked in AsyncResult.get()
    pipe.execute()
