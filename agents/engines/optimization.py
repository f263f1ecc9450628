"""Optimization engine: turns a resource snapshot into recommended actions by simple rules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.base import BaseAgent
from agents.models import AgentConfig, TaskRequest
from agents.names import CAP_OPTIMIZATION, OPTIMIZATION
from agents.validation.payloads import DEFAULT_TASK_TYPE

# (metric, threshold, action, reason): an action fires when the metric exceeds its threshold.
RULES: tuple[tuple[str, float, str, str], ...] = (
    ("cpu_percent", 80.0, "scale_up", "CPU above 80%"),
    ("memory_percent", 85.0, "scale_up", "memory above 85%"),
    ("queue_depth", 1000.0, "add_workers", "queue deeper than 1000"),
    ("error_rate", 0.05, "investigate_errors", "error rate above 5%"),
)
IDLE_CPU_PERCENT = 10.0


class SnapshotPayload(BaseModel):
    """The optimization payload: one resource snapshot, metric name -> value."""

    model_config = ConfigDict(allow_inf_nan=False)

    snapshot: dict[str, float] = Field(
        description="e.g. cpu_percent, memory_percent, queue_depth, error_rate."
    )


def recommend(snapshot: dict[str, float]) -> list[dict[str, Any]]:
    """Actions the rules recommend for one snapshot, in rule order."""
    actions = [
        {"action": action, "metric": metric, "value": snapshot[metric], "reason": reason}
        for metric, limit, action, reason in RULES
        if metric in snapshot and snapshot[metric] > limit
    ]
    if not actions and snapshot.get("cpu_percent", 100.0) < IDLE_CPU_PERCENT:
        actions.append(
            {
                "action": "scale_down",
                "metric": "cpu_percent",
                "value": snapshot["cpu_percent"],
                "reason": f"CPU below {IDLE_CPU_PERCENT:.0f}%",
            }
        )
    return actions


class OptimizationEngine(BaseAgent):
    """payload: {"snapshot": {"cpu_percent": 91, "queue_depth": 12, ...}} (SnapshotPayload)."""

    config = AgentConfig(
        name=OPTIMIZATION,
        agent_type="optimization",
        capabilities=[CAP_OPTIMIZATION],
        max_concurrent_tasks=2,
        queue_size=1000,
        task_timeout_seconds=120,
    )
    payload_schemas = {DEFAULT_TASK_TYPE: SnapshotPayload}

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        # The payload was validated by SnapshotPayload (agents/execution.py).
        return {"actions": recommend(task_request.payload["snapshot"])}
