"""Celery's signals as an adapter into the pipeline, for the tasks Celery's tracer runs
(per-request engines, beat jobs) and for every publish.

Nothing here decides or records anything itself: each signal becomes a Delivery or an Outcome
and the registered hooks do the rest, exactly as they do for batch tasks. Hooks marked
`tracer_does_it` (results, task events, callbacks, retries) are skipped: the tracer did those.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any
from weakref import WeakValueDictionary

from celery import Task
from celery.exceptions import TaskRevokedError, TimeLimitExceeded
from celery.signals import (
    before_task_publish,
    task_failure,
    task_prerun,
    task_received,
    task_retry,
    task_revoked,
    task_success,
)
from celery.worker.request import Request

from agents.names import is_platform_task
from agents.statuses import FAILED, RETRYING, REVOKED, SUCCESS
from tasks.pipeline.delivery import Delivery, Outcome, Published, delivery_from_fields
from tasks.pipeline.registry import pipeline

# Start of each running traced task in this process (prerun and the outcome share the process).
_started: dict[str, float] = {}
# Requests this worker received, while they live: a hard time limit is reported by the worker's
# main process, where the task has no request context of its own.
_received: WeakValueDictionary[str, Request] = WeakValueDictionary()
# Celery 5.7 sends task_failure twice for a hard time limit (Request.on_timeout, then on_failure
# for the same job): the ids already reported, oldest first, bounded.
_timed_out: OrderedDict[str, None] = OrderedDict()
_TIMED_OUT_KEPT = 10_000


def traced_delivery(task: Task) -> Delivery:
    """The Delivery of the request `task` is running now (inside the task or its signals)."""
    return request_delivery(task.name, task.request)


def request_delivery(task_name: str, request: Any) -> Delivery:
    """The Delivery of a task's request context, or of a worker's Request object."""
    if isinstance(request, Request):
        fields = request.request_dict | {
            "id": request.id, "args": request.args, "kwargs": request.kwargs, "hostname": request.hostname,
        }  # fmt: skip
        return delivery_from_fields(task_name, fields, request.delivery_info or {})
    return delivery_from_fields(task_name, vars(request), request.delivery_info or {})


def _delivery(task: Task, task_id: str, args: Any = None, kwargs: Any = None) -> Delivery:
    if task.request.id == task_id:
        return traced_delivery(task)
    received = _received.get(task_id)
    if received is not None:
        return request_delivery(task.name, received)
    return Delivery(id=task_id, task=task.name, args=tuple(args or ()), kwargs=dict(kwargs or {}))


def _finish(delivery: Delivery, status: str, **fields: Any) -> None:
    started = _started.pop(delivery.id, None)
    runtime = time.perf_counter() - started if started is not None else None
    pipeline().after_process([Outcome(delivery, status, runtime=runtime, by_tracer=True, **fields)])


@before_task_publish.connect
def _published(
    sender: str | None = None,
    headers: dict[str, Any] | None = None,
    body: Any = None,
    routing_key: str | None = None,
    **_: Any,
) -> None:
    if not is_platform_task(sender) or headers is None:
        return
    args, kwargs = (body[0], body[1]) if isinstance(body, list | tuple) and len(body) >= 2 else ((), {})
    args, kwargs = tuple(args or ()), dict(kwargs or {})
    pipeline().after_publish([Published(headers["id"], str(sender), args, kwargs, queue=routing_key or "")])


@task_received.connect
def _on_received(request: Request | None = None, **_: Any) -> None:
    if request is not None and is_platform_task(request.name):
        _received[request.id] = request


@task_prerun.connect
def _on_prerun(task_id: str, task: Task, **_: Any) -> None:
    if not is_platform_task(task.name):
        return
    _started[task_id] = time.perf_counter()
    pipeline().before_process([traced_delivery(task)], by_tracer=True)


@task_success.connect
def _on_success(sender: Task, result: Any = None, **_: Any) -> None:
    if is_platform_task(sender.name):
        _finish(traced_delivery(sender), SUCCESS, result=result)


@task_failure.connect
def _on_failure(
    sender: Task,
    task_id: str,
    exception: BaseException,
    args: Any = None,
    kwargs: Any = None,
    **_: Any,
) -> None:
    if not is_platform_task(sender.name):
        return
    if isinstance(exception, TimeLimitExceeded):
        if task_id in _timed_out:
            return
        _timed_out[task_id] = None
        if len(_timed_out) > _TIMED_OUT_KEPT:
            _timed_out.popitem(last=False)
    _finish(_delivery(sender, task_id, args, kwargs), FAILED, error=exception)


@task_retry.connect
def _on_retry(sender: Task, request: Any = None, reason: Any = None, **_: Any) -> None:
    if not is_platform_task(sender.name) or request is None:
        return
    when = getattr(reason, "when", None)
    countdown = float(when) if isinstance(when, int | float) else None
    error = getattr(reason, "exc", None) or reason
    _finish(request_delivery(sender.name, request), RETRYING, error=error, countdown=countdown)


@task_revoked.connect
def _on_revoked(
    sender: Task, request: Any = None, terminated: bool = False, expired: bool = False, **_: Any
) -> None:
    if not is_platform_task(sender.name) or request is None:
        return
    why = "expired" if expired else "terminated" if terminated else "revoked before it ran"
    _finish(request_delivery(sender.name, request), REVOKED, error=TaskRevokedError(why))
