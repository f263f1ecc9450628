"""Runs one request through an engine: validation (request, then payload), the handler within
its timeout, its metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from pydantic import ValidationError

from agents import aio
from agents.base import BaseAgent
from agents.errors import InvalidRequest, RequestTimeout, UnknownCapability
from agents.logs import request_context
from agents.models import TaskRequest
from agents.validation.payloads import check_payload, describe_problems


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad field and its problem, e.g. `capability: Field required`."""
    return "invalid request: " + describe_problems(exc, root="request")


def parse_request(raw: Any, *, task_id: str | None, default_capability: str | None = None) -> TaskRequest:
    """Validate a JSON request into a TaskRequest whose task_id is the Celery task id."""
    if not isinstance(raw, dict):
        raise InvalidRequest(f"invalid request: expected a JSON object, got {type(raw).__name__}")
    data = dict(raw)
    if task_id is not None:
        data["task_id"] = task_id
    if default_capability is not None:
        data.setdefault("capability", default_capability)
    try:
        return TaskRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None


def execute(engine: BaseAgent, raw: Any, *, task_id: str | None) -> Any:
    """Validate one raw request for `engine` and run its handler (within the request's own
    timeout); the caller decides what the outcome means (tasks/pipeline)."""
    request = parse_request(raw, task_id=task_id, default_capability=engine.capabilities[0])
    if request.capability not in engine.capabilities:
        raise UnknownCapability(
            f"engine {engine.name!r} does not offer capability {request.capability!r} "
            f"(it offers {', '.join(engine.capabilities)})"
        )
    if engine.payload_schemas:  # the one check on this path for engines that declare no schema
        payload = check_payload(
            engine.payload_schemas, engine=engine.name, capability=request.capability,
            task_type=request.task_type, payload=request.payload,
        )  # fmt: skip
        if payload is not None:
            request.payload = payload  # the handler sees the validated payload, defaults filled
    engine.metrics.tasks_received += 1
    started = time.perf_counter()
    ok = False
    # Every log line of the handler carries the request's ids (agents/logs.py, JSON lines).
    context = request_context(
        task_id=request.task_id, engine=engine.name, capability=request.capability,
        correlation_id=request.correlation_id, trace_id=request.trace_id,
    )  # fmt: skip
    try:
        with structlog.contextvars.bound_contextvars(**context):
            result = aio.run(_with_timeout(engine, request))
        ok = True
        return result
    finally:
        engine.metrics.record(ok, (time.perf_counter() - started) * 1000)


async def _with_timeout(engine: BaseAgent, request: TaskRequest) -> Any:
    if request.timeout is None:
        return await engine._handle_task(request)
    try:
        return await asyncio.wait_for(engine._handle_task(request), request.timeout)
    except TimeoutError:
        raise RequestTimeout(f"request timeout of {request.timeout:g}s exceeded") from None
