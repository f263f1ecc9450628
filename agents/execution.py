"""Runs one request through an engine: validation, the handler, metrics and breaker outcome."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis
import structlog
from pydantic import ValidationError

from agents import aio
from agents.base import BaseAgent
from agents.connections import breakers
from agents.errors import InvalidRequest, PermanentError, RequestTimeout, UnknownCapability
from agents.models import TaskRequest

log = structlog.get_logger("agents.execution")


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad field and its problem, e.g. `capability: Field required`."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "request"
        parts.append(f"{location}: {error['msg']}")
    return "invalid request: " + "; ".join(parts)


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


def execute(
    engine: BaseAgent, raw: Any, *, task_id: str | None, samples: list[tuple[bool, float]] | None = None
) -> Any:
    """Run `engine`'s handler for one raw request and record the outcome for routing (or, for a
    batch, append it to `samples` to be recorded with the others)."""
    request = parse_request(raw, task_id=task_id, default_capability=engine.capabilities[0])
    if request.capability not in engine.capabilities:
        raise UnknownCapability(
            f"engine {engine.name!r} does not offer capability {request.capability!r} "
            f"(it offers {', '.join(engine.capabilities)})"
        )
    engine.metrics.tasks_received += 1
    started = time.perf_counter()
    ok = False
    caller_fault = False
    try:
        result = aio.run(_with_timeout(engine, request))
        ok = True
        return result
    except PermanentError:
        caller_fault = True
        raise
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        engine.metrics.record(ok, elapsed_ms)
        if caller_fault:
            pass
        elif samples is not None:
            samples.append((ok, elapsed_ms))
        else:
            _record_outcome(engine.name, ok, elapsed_ms)


async def _with_timeout(engine: BaseAgent, request: TaskRequest) -> Any:
    if request.timeout is None:
        return await engine._handle_task(request)
    try:
        return await asyncio.wait_for(engine._handle_task(request), request.timeout)
    except TimeoutError:
        raise RequestTimeout(f"request timeout of {request.timeout:g}s exceeded") from None


def _record_outcome(engine: str, ok: bool, elapsed_ms: float) -> None:
    # Losing one breaker sample is better than failing a task that already ran.
    try:
        if breakers().record(engine, ok, elapsed_ms):
            log.warning("breaker_open", engine=engine)
    except redis.RedisError as exc:
        log.warning("outcome_not_recorded", engine=engine, error=str(exc))
