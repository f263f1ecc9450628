"""BaseAgent: the engine contract, kept source-compatible with the seed's API.

A custom engine subclasses it, implements `_handle_task`, and is registered through
AGENT_ENGINES; the platform gives it a queue, a Celery task, routing and time limits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog
from pydantic import BaseModel

from agents.models import AgentConfig, TaskRequest

MessageHandler = Callable[[Any], Awaitable[Any]]


@dataclass
class AgentMetrics:
    """Per-process counters, named as in the seed (the platform's Prometheus metrics add to these)."""

    tasks_received: int = 0
    tasks_completed: int = 0
    tasks_failed: int = 0
    avg_processing_time_ms: float = 0.0
    last_task_at: float | None = None
    _timed: int = field(default=0, repr=False)

    def record(self, ok: bool, elapsed_ms: float) -> None:
        """Count one finished task and fold its time into the running average."""
        if ok:
            self.tasks_completed += 1
        else:
            self.tasks_failed += 1
        self._timed += 1
        self.avg_processing_time_ms += (elapsed_ms - self.avg_processing_time_ms) / self._timed
        self.last_task_at = time.time()


class BaseAgent:
    """Base class of every engine; override `_handle_task`, optionally `_setup_subscriptions`."""

    config: ClassVar[AgentConfig | None] = None
    # task_type -> pydantic model of the payload, checked before `_handle_task` runs (which then
    # sees the validated payload, defaults filled). "default" covers requests without a task_type
    # and task types without a schema of their own; "<capability>:<task_type>" keys one capability.
    # No schema: any payload is accepted. See agents/validation/payloads.py.
    payload_schemas: ClassVar[dict[str, type[BaseModel]]] = {}

    def __init__(self, config: AgentConfig | None = None) -> None:
        chosen = config or type(self).config
        if chosen is None:
            raise TypeError(f"{type(self).__name__} needs an AgentConfig (argument or class attribute)")
        self.config = chosen  # type: ignore[misc]
        self.logger = structlog.get_logger(f"agents.engine.{chosen.name}").bind(engine=chosen.name)
        self.metrics = AgentMetrics()
        self.subscriptions: list[tuple[str, MessageHandler]] = []

    @property
    def name(self) -> str:
        """Engine name; also its queue name."""
        assert self.config is not None  # nosec B101 # narrows the type for mypy, not a check
        return self.config.name

    @property
    def capabilities(self) -> list[str]:
        """Capabilities the router matches requests against."""
        assert self.config is not None  # nosec B101 # narrows the type for mypy, not a check
        return list(self.config.capabilities)

    async def _handle_task(self, task_request: TaskRequest) -> Any:
        """Do the engine's work for one request; return a JSON-serialisable result."""
        raise NotImplementedError(f"engine {self.name} does not implement _handle_task")

    async def _setup_subscriptions(self) -> None:
        """Declare NATS subjects with `self._subscribe`; the NATS bridge maps them to this engine."""

    async def _subscribe(self, subject: str, handler: MessageHandler) -> None:
        """Record a NATS subject for this engine (the bridge consumes it, not the worker)."""
        self.subscriptions.append((subject, handler))

    async def _publish(self, subject: str, data: Any) -> None:
        """Publish to core NATS (bytes/str as they are, anything else as JSON)."""
        from agents.nats_client import publish

        await publish(subject, data)

    async def _publish_to_stream(self, stream: str, data: Any) -> None:
        """Publish to JetStream on subject `stream` (a stream must capture it); waits for the ack."""
        from agents.nats_client import publish_to_stream

        await publish_to_stream(stream, data)

    async def _db_fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        """Run a parameterised query (`$1` or `:name` binds) on the shared pool; rows as dicts."""
        from db import raw

        return await asyncio.to_thread(raw.fetch, query, args)

    async def _db_execute(self, query: str, *args: Any) -> int:
        """Run a parameterised statement on the shared pool; returns the affected row count."""
        from db import raw

        return await asyncio.to_thread(raw.execute, query, args)

    async def start(self) -> bool:
        """Seed compatibility: collect subscriptions; workers are started by `agents worker`."""
        self.subscriptions.clear()
        await self._setup_subscriptions()
        return True

    async def stop(self) -> None:
        """Seed compatibility: nothing to release; Celery owns the worker's lifetime."""

    async def run_forever(self) -> None:
        """Seed compatibility: run this engine's Celery worker until it exits."""
        from agents.worker import run_worker_process

        await run_worker_process(self)
