"""The engine contract's data: requests, engine configuration, priorities and routing decisions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.names import engine_task_name

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class Priority(IntEnum):
    """Request priority as the seed defines it (higher is more urgent)."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def broker_priority(self) -> int:
        """Kombu's Redis transport serves priority 0 first, so the scale is reversed."""
        return {4: 0, 3: 3, 2: 6, 1: 9}[int(self)]


class TaskRequest(BaseModel):
    """One unit of work for an engine; arrives as JSON, validated at every edge."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    task_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=200)
    capability: str = Field(min_length=1, max_length=64)
    task_type: str = Field("default", min_length=1, max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = Priority.NORMAL
    timeout: float | None = Field(None, gt=0, description="Seconds; caps the engine's time limit.")
    correlation_id: str | None = Field(None, max_length=200)
    trace_id: str | None = Field(None, max_length=200)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("priority", mode="before")
    @classmethod
    def _priority_by_name(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.isdigit():
            try:
                return Priority[value.upper()]
            except KeyError:
                names = ", ".join(p.name.lower() for p in Priority)
                raise ValueError(f"unknown priority {value!r}; use one of {names} or 1-4") from None
        return value


class AgentConfig(BaseModel):
    """An engine's configuration, field names as in the seed's AgentConfig."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Engine name, also its queue name.")
    capabilities: list[str] = Field(min_length=1)
    agent_id: str | None = None
    agent_type: str = "custom"
    max_concurrent_tasks: int = Field(2, ge=1, le=1000, description="Worker concurrency.")
    queue_size: int = Field(1000, ge=1, description="Queue depth above which routing backs off.")
    task_timeout_seconds: int | None = Field(
        None, ge=1, description="Hard time limit; None uses AGENT_TASK_TIMEOUT_SECONDS."
    )
    pool: str = Field("prefork", pattern=r"^(prefork|threads|solo|gevent|eventlet)$")
    batch_size: int = Field(
        1,
        ge=1,
        le=1000,
        description="Requests per pool call; above 1 the engine runs as a batch task (high throughput).",
    )
    max_retries: int = Field(3, ge=0, le=100, description="Retries of a TransientError, with backoff.")
    idempotent: bool = Field(
        False, description="Running a request twice is harmless: the reaper may re-queue it."
    )
    # Accepted so seed configs load unchanged; connections come from Settings, never from code.
    nats_url: str | None = Field(None, exclude=True)
    postgres_url: str | None = Field(None, exclude=True)

    @field_validator("capabilities")
    @classmethod
    def _capabilities_are_names(cls, value: list[str]) -> list[str]:
        for capability in value:
            if not capability or len(capability) > 64:
                raise ValueError(f"capability {capability!r} must be 1-64 characters")
        return value


class Decision(BaseModel):
    """Where the router sends a request, and why."""

    engine: str
    queue: str
    # The engine's Celery task, published by name (the router never needs the engine's code).
    task: str = ""
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str
    # A trial of an engine other than the best (agents/routing/decision.py `explore`).
    explored: bool = False

    @model_validator(mode="after")
    def _task_by_convention(self) -> Decision:
        self.task = self.task or engine_task_name(self.engine)
        return self
