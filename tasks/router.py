"""The router task: validates a request, picks the engine, and replaces itself with its task."""

from __future__ import annotations

from typing import Any

from celery import Task

from agents.errors import REJECTION_ERRORS
from agents.names import ROUTE_TASK, ROUTER_QUEUE, engine_task_name
from agents.router import plan
from tasks.app import app


@app.task(bind=True, name=ROUTE_TASK, queue=ROUTER_QUEUE, throws=REJECTION_ERRORS)
def route(self: Task, request: dict[str, Any]) -> Any:
    """Route `request` to the best engine for its capability; the caller's AsyncResult follows."""
    task_request, decision = plan(request, task_id=self.request.id)
    engine_call = app.signature(
        engine_task_name(decision.engine),
        args=(task_request.model_dump(mode="json"),),
        kwargs={"decision": decision.model_dump()},
        queue=decision.queue,
        priority=task_request.priority.broker_priority,
    )
    # replace() gives the engine task this task's id, so one id covers the whole request.
    return self.replace(engine_call)
