"""Publishes the result of a bridged event back to NATS (its Reply-To, or BRIDGE_RESULTS_SUBJECT).

Only tasks the bridge marked with a reply subject pay anything: others return at the first check.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import Task
from celery.signals import task_failure, task_success

from agents import aio
from agents.nats_client import publish
from agents.publisher import REPLY_SUBJECT_HEADER

log = structlog.get_logger("agents.bridge")


def _reply(task: Task, body: dict[str, Any]) -> None:
    subject = task.request.get(REPLY_SUBJECT_HEADER)
    if not subject:
        return
    try:
        aio.run(publish(subject, {"task_id": task.request.id, **body}))
    except Exception as exc:  # the task's own outcome stands; only the notification is lost
        log.warning("bridge_reply_failed", task_id=task.request.id, subject=subject, error=repr(exc))


@task_success.connect
def _on_success(sender: Task, result: Any = None, **_: Any) -> None:
    _reply(sender, {"status": "success", "result": result})


@task_failure.connect
def _on_failure(sender: Task, exception: BaseException | None = None, **_: Any) -> None:
    _reply(sender, {"status": "failure", "error": f"{type(exception).__name__}: {exception}"})
