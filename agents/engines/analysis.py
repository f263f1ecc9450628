"""Analysis engine: describes a numeric series and flags anomalies by z-score; validates
payloads against the schemas engines declare (the `validation` capability)."""

from __future__ import annotations

import statistics
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.base import BaseAgent
from agents.errors import InvalidRequest
from agents.models import AgentConfig, TaskRequest
from agents.names import ANALYSIS, CAP_ANALYSIS, CAP_VALIDATION
from agents.validation.payloads import DEFAULT_TASK_TYPE, for_capability
from agents.validation.request import Declared, ValidationRequest, answer

DEFAULT_Z_LIMIT = 3.0


class SeriesPayload(BaseModel):
    """The analysis payload: a numeric series and the |z-score| above which a value is an anomaly."""

    model_config = ConfigDict(allow_inf_nan=False)

    data: list[float] = Field(min_length=1, description="The series, at least one number.")
    z_limit: float = Field(DEFAULT_Z_LIMIT, gt=0, description="Anomaly threshold on |z|.")


def describe(values: list[float], z_limit: float = DEFAULT_Z_LIMIT) -> dict[str, Any]:
    """Count, mean, standard deviation, min, max, and the indexes whose |z| exceeds `z_limit`."""
    if not values:
        raise InvalidRequest("payload.data: needs at least one number")
    mean = statistics.fmean(values)
    stdev = statistics.pstdev(values) if len(values) > 1 else 0.0
    anomalies = (
        [
            {"index": i, "value": v, "z": (v - mean) / stdev}
            for i, v in enumerate(values)
            if abs(v - mean) / stdev > z_limit
        ]
        if stdev > 0
        else []
    )
    return {
        "count": len(values),
        "mean": mean,
        "stdev": stdev,
        "min": min(values),
        "max": max(values),
        "anomalies": anomalies,
    }


def declared_schemas() -> Declared:
    """Every announced engine's payload schemas, from the engine cards in Redis (the I/O part)."""
    from agents.connections import registry

    return {name: card.schemas for name, card in registry().cards().items()}


class AnalysisEngine(BaseAgent):
    """analysis: {"data": [numbers], "z_limit": 3.0}; validation: {"task_type", "engine", "payload"}
    or {"schema", "payload"} -> {"valid", "task_type", "engine", "errors"}."""

    config = AgentConfig(
        name=ANALYSIS,
        agent_type="analysis",
        capabilities=[CAP_ANALYSIS, CAP_VALIDATION],
        max_concurrent_tasks=2,
        # The seed's "high throughput" profile: many small requests, a deep queue, and here a
        # batch per pool call (docs/benchmarks.md).
        queue_size=5000,
        task_timeout_seconds=120,
        batch_size=100,
    )
    payload_schemas = {
        DEFAULT_TASK_TYPE: SeriesPayload,
        for_capability(CAP_VALIDATION): ValidationRequest,
    }

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        # The payload was validated by the schema of its capability (agents/execution.py).
        payload = task_request.payload
        if task_request.capability == CAP_VALIDATION:
            return answer(payload, declared_schemas)
        return describe(payload["data"], payload["z_limit"])
