"""Performance engine: summarises metric samples and flags threshold breaches."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from agents.base import BaseAgent
from agents.errors import InvalidRequest
from agents.models import AgentConfig, TaskRequest
from agents.names import CAP_MONITORING, CAP_PERFORMANCE, PERFORMANCE
from agents.validation.payloads import DEFAULT_TASK_TYPE


class MetricsPayload(BaseModel):
    """The performance payload: samples per metric, and the p95 limit of some of them."""

    model_config = ConfigDict(allow_inf_nan=False)

    metrics: dict[str, Annotated[list[float], Field(min_length=1)]] = Field(
        default_factory=dict, description="Metric name -> its samples (at least one)."
    )
    thresholds: dict[str, float] = Field(default_factory=dict, description="Metric name -> p95 limit.")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarise(metrics: dict[str, list[float]], thresholds: dict[str, float]) -> dict[str, Any]:
    """Count, mean, p95 and max of each metric, and the metrics whose p95 exceeds a threshold."""
    summary: dict[str, dict[str, float]] = {}
    breaches: list[dict[str, Any]] = []
    for name, values in metrics.items():
        if not values:
            raise InvalidRequest(f"payload.metrics.{name}: needs at least one value")
        p95 = percentile(values, 0.95)
        summary[name] = {
            "count": len(values),
            "mean": sum(values) / len(values),
            "p95": p95,
            "max": max(values),
        }
        limit = thresholds.get(name)
        if limit is not None and p95 > limit:
            breaches.append({"metric": name, "p95": p95, "threshold": limit})
    return {"summary": summary, "breaches": breaches}


class PerformanceEngine(BaseAgent):
    """payload: {"metrics": {name: [values]}, "thresholds": {name: limit}} (MetricsPayload)."""

    config = AgentConfig(
        name=PERFORMANCE,
        agent_type="performance",
        capabilities=[CAP_PERFORMANCE, CAP_MONITORING],
        max_concurrent_tasks=2,
        queue_size=1000,
        task_timeout_seconds=60,
    )
    payload_schemas = {DEFAULT_TASK_TYPE: MetricsPayload}

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        # The payload was validated by MetricsPayload (agents/execution.py).
        return summarise(task_request.payload["metrics"], task_request.payload["thresholds"])
