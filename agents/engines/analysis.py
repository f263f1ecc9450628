"""Analysis engine: describes a numeric series and flags anomalies by z-score."""

from __future__ import annotations

import statistics
from typing import Any

from agents.base import BaseAgent
from agents.errors import InvalidRequest
from agents.models import AgentConfig, TaskRequest
from agents.names import ANALYSIS, CAP_ANALYSIS, CAP_VALIDATION

DEFAULT_Z_LIMIT = 3.0


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


class AnalysisEngine(BaseAgent):
    """payload: {"data": [numbers], "z_limit": 3.0}."""

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

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        data = task_request.payload.get("data")
        z_limit = task_request.payload.get("z_limit", DEFAULT_Z_LIMIT)
        if not isinstance(data, list):
            raise InvalidRequest("payload.data: a list of numbers is required")
        try:
            values = [float(v) for v in data]
            limit = float(z_limit)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"payload.data: values must be numbers ({exc})") from None
        return describe(values, limit)
