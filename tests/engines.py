"""Engines used by the tests, registered through AGENT_ENGINES exactly as a user would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

import structlog
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import BaseModel, Field

from agents import AgentConfig, BaseAgent, TaskRequest
from agents.connections import redis_client
from agents.errors import TransientError

# The seed's "Deploying Your First Agent", with only the import changed (and no password in code).
config = AgentConfig(
    agent_id="my-engine-001",
    name="my_engine",
    agent_type="custom",
    capabilities=["processing", "analysis"],
    nats_url="nats://nats:4222",
)


class MyEngine(BaseAgent):
    async def _setup_subscriptions(self):
        await self._subscribe("my.topic", self._handle_message)

    async def _handle_message(self, msg: Any) -> None:
        pass

    async def _handle_task(self, task_request: TaskRequest):
        # Your logic here
        return {"status": "success", "engine": self.name, "task_id": task_request.task_id}


engine = MyEngine(config)


class FlakyEngine(BaseAgent):
    """Fails on request, sleeps on request: drives breaker, backpressure and time-limit tests."""

    config = AgentConfig(
        name="flaky",
        capabilities=["flaky"],
        max_concurrent_tasks=2,
        queue_size=3,
        task_timeout_seconds=3,
        max_retries=3,
        idempotent=True,
    )

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        payload = task_request.payload
        if payload.get("crash"):  # a poison message: it kills the pool process running it
            os._exit(13)
        transient = int(payload.get("transient_failures", 0))
        if transient and redis_client().incr(f"test:attempts:{task_request.task_id}") <= transient:
            raise TransientError("asked to fail transiently")
        if payload.get("ignore_soft_limit"):
            # A handler that swallows the soft limit and blocks: only the hard limit stops it.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(SoftTimeLimitExceeded):
                    time.sleep(1)
        await asyncio.sleep(float(payload.get("sleep", 0)))
        if payload.get("log"):  # a handler's log line: it carries the request's ids (agents/logs.py)
            structlog.get_logger("tests.flaky").info("flaky_says_hello")
        if payload.get("fail"):
            raise RuntimeError("asked to fail")
        if "then" in payload:  # a request for the next step of a chain
            return dict(payload["then"])
        return {"ok": True, "task_id": task_request.task_id}


# Hash task_id -> how many times the counter engine ran it (wiped between tests: agents:*).
COUNTS_KEY = "agents:test:counts"


class StrictCounting(BaseModel):
    """The counter engine's payload for task_type "strict" only (its other task types take any)."""

    count: int = Field(ge=0)
    label: str = "unlabelled"


class CounterEngine(BaseAgent):
    """Counts every execution per task id, so tests check "exactly once" by side effect."""

    config = AgentConfig(name="counter", capabilities=["counting"], max_concurrent_tasks=2)
    # No "default" schema: only requests of task_type "strict" are checked before the handler.
    payload_schemas = {"strict": StrictCounting}

    async def _setup_subscriptions(self) -> None:
        await self._subscribe("legacy.counter", self._on_event)

    async def _on_event(self, msg: Any) -> None:
        pass

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        redis_client().hincrby(COUNTS_KEY, task_request.task_id, 1)
        payload = task_request.payload
        if payload.get("echo"):  # engines publish to NATS from inside a task
            await self._publish(payload["echo"], {"task_id": task_request.task_id})
        if payload.get("echo_stream"):
            await self._publish_to_stream(payload["echo_stream"], {"task_id": task_request.task_id})
        return {"task_type": task_request.task_type, "payload": payload}


# Hash task_id -> how many times the batch engine ran it.
BATCH_RUNS_KEY = "agents:test:batch-runs"


class BatchEngine(FlakyEngine):
    """The flaky engine's behaviours as a high-throughput engine (batch_size > 1), counting runs."""

    config = AgentConfig(
        name="batchy",
        capabilities=["batching"],
        max_concurrent_tasks=1,
        batch_size=20,
        task_timeout_seconds=4,
        max_retries=2,
    )

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        redis_client().hincrby(BATCH_RUNS_KEY, task_request.task_id, 1)
        return await super()._handle_task(task_request)


# Hash task_id -> "<exception type>: <message>" for each failed task whose errback ran.
ERRBACKS_KEY = "agents:test:errbacks"


@shared_task(name="tests.record_errback")
def record_errback(request: Any, exc: BaseException, traceback: Any) -> None:
    """A link_error errback (Celery's (request, exc, traceback) form): records that it ran."""
    redis_client().hset(ERRBACKS_KEY, request.id, f"{type(exc).__name__}: {exc}")


@shared_task(name="tests.collect")
def collect(results: list[Any]) -> list[Any]:
    """A chord's body: returns the results of the chord's parts, in order."""
    return results
