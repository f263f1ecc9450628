"""Celery signals → lifecycle records: queued, processing, retrying, success, failed, rejected, revoked.

Every task of the platform (routed, direct `.delay()`, bridged, beat) passes through these
handlers, in whichever process sees the transition.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import structlog
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import (
    before_task_publish,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_revoked,
)

from agents.connections import redis_client
from agents.errors import REJECTION_ERRORS
from agents.models import Priority
from agents.names import ENGINE_TASK_PREFIX, KEY_PREFIX, ROUTE_TASK
from agents.recorder import record
from db.models import FAILED, PROCESSING, QUEUED, REJECTED, RETRYING, REVOKED, SUCCESS

log = structlog.get_logger("agents.lifecycle")
_started: dict[str, float] = {}


def _ours(name: str | None) -> bool:
    return bool(name) and str(name).startswith(KEY_PREFIX.rstrip(":") + ".")


def _engine_of(name: str) -> str | None:
    return name.removeprefix(ENGINE_TASK_PREFIX) if name.startswith(ENGINE_TASK_PREFIX) else None


def _emit(event: dict[str, Any]) -> None:
    event["at"] = time.time()
    try:
        record(redis_client(), event)
    except redis.RedisError as exc:
        # Redis is also the broker: if it is down, the task itself cannot move either.
        log.warning("lifecycle_not_recorded", task_id=event["task_id"], error=str(exc)[:200])


def request_fields(request: Any) -> dict[str, Any]:
    """Columns taken from a request dict (the first task argument), if it is one."""
    if not isinstance(request, dict):
        return {}
    payload = request.get("payload")
    fields: dict[str, Any] = {
        "capability": request.get("capability"),
        "task_type": request.get("task_type", "default"),
        "payload": payload,
    }
    try:
        fields["priority"] = (
            int(Priority[request["priority"].upper()])
            if isinstance(request.get("priority"), str)
            else int(request.get("priority") or Priority.NORMAL)
        )
    except (KeyError, ValueError):
        fields["priority"] = None  # invalid; the router will reject and say why
    return fields


@before_task_publish.connect
def _queued(
    sender: str | None = None, headers: dict[str, Any] | None = None, body: Any = None, **_: Any
) -> None:
    if not _ours(sender) or headers is None:
        return
    args, kwargs = (body[0], body[1]) if isinstance(body, list | tuple) and len(body) >= 2 else ((), {})
    event: dict[str, Any] = {"task_id": headers["id"], "status": QUEUED, "task_name": sender}
    event |= request_fields(args[0] if args else None)
    decision = (kwargs or {}).get("decision")
    engine = _engine_of(str(sender))
    if isinstance(decision, dict):
        event |= {"confidence": decision.get("confidence"), "reason": decision.get("reason")}
    event["engine"] = engine
    _emit(event)


@task_prerun.connect
def _processing(task_id: str, task: Task, **_: Any) -> None:
    if not _ours(task.name):
        return
    _started[task_id] = time.perf_counter()
    _emit(
        {
            "task_id": task_id,
            "status": PROCESSING,
            "task_name": task.name,
            "engine": _engine_of(task.name),
            "started_at": time.time(),
            "worker": task.request.hostname,
            "retries": task.request.retries,
        }
    )


@task_postrun.connect
def _finished(task_id: str, task: Task, state: str | None = None, retval: Any = None, **_: Any) -> None:
    started = _started.pop(task_id, None)
    if not _ours(task.name) or state != "SUCCESS":
        return  # failures and retries have their own signals; IGNORED is Task.replace
    runtime = time.perf_counter() - started if started is not None else None
    _emit(
        {
            "task_id": task_id,
            "status": SUCCESS,
            "finished_at": time.time(),
            "runtime": runtime,
            "result": retval,
            "worker": task.request.hostname,
        }
    )


def describe_failure(exception: BaseException) -> str:
    """The reason stored in `error`: exception type and message, time limits spelled out."""
    if isinstance(exception, TimeLimitExceeded):
        return (
            f"TimeLimitExceeded: hard time limit ({exception.args[0] if exception.args else '?'}s) exceeded"
        )
    if isinstance(exception, SoftTimeLimitExceeded):
        return "SoftTimeLimitExceeded: soft time limit exceeded"
    return f"{type(exception).__name__}: {exception}"[:2000]


@task_failure.connect
def _failed(
    sender: Task | None = None, task_id: str | None = None, exception: BaseException | None = None, **_: Any
) -> None:
    if sender is None or task_id is None or not _ours(sender.name):
        return
    started = _started.pop(task_id, None)
    rejected = sender.name == ROUTE_TASK and isinstance(exception, REJECTION_ERRORS)
    _emit(
        {
            "task_id": task_id,
            "status": REJECTED if rejected else FAILED,
            "finished_at": time.time(),
            "runtime": time.perf_counter() - started if started is not None else None,
            "error": describe_failure(exception) if exception else "failed",
        }
    )


@task_retry.connect
def _retrying(sender: Task | None = None, request: Any = None, reason: Any = None, **_: Any) -> None:
    if sender is None or request is None or not _ours(sender.name):
        return
    _started.pop(request.id, None)
    _emit(
        {
            "task_id": request.id,
            "status": RETRYING,
            "retries": (request.retries or 0) + 1,
            "error": f"retry: {reason}"[:2000],
        }
    )


@task_revoked.connect
def _revoked(
    sender: Task | None = None, request: Any = None, terminated: bool = False, expired: bool = False, **_: Any
) -> None:
    if sender is None or request is None or not _ours(sender.name):
        return
    why = "expired" if expired else "terminated" if terminated else "revoked before it ran"
    _emit({"task_id": request.id, "status": REVOKED, "finished_at": time.time(), "error": f"revoked: {why}"})
