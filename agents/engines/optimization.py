"""Optimization engine: turns a resource snapshot into recommended actions by simple rules."""

from __future__ import annotations

from typing import Any

from agents.base import BaseAgent
from agents.errors import InvalidRequest
from agents.models import AgentConfig, TaskRequest
from agents.names import CAP_OPTIMIZATION, OPTIMIZATION

# (metric, threshold, action, reason): an action fires when the metric exceeds its threshold.
RULES: tuple[tuple[str, float, str, str], ...] = (
    ("cpu_percent", 80.0, "scale_up", "CPU above 80%"),
    ("memory_percent", 85.0, "scale_up", "memory above 85%"),
    ("queue_depth", 1000.0, "add_workers", "queue deeper than 1000"),
    ("error_rate", 0.05, "investigate_errors", "error rate above 5%"),
)
IDLE_CPU_PERCENT = 10.0


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
    """payload: {"snapshot": {"cpu_percent": 91, "queue_depth": 12, ...}}."""

    config = AgentConfig(
        name=OPTIMIZATION,
        agent_type="optimization",
        capabilities=[CAP_OPTIMIZATION],
        max_concurrent_tasks=2,
        queue_size=1000,
        task_timeout_seconds=120,
    )

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        snapshot = task_request.payload.get("snapshot")
        if not isinstance(snapshot, dict):
            raise InvalidRequest("payload.snapshot: an object of metric name to number is required")
        try:
            clean = {str(k): float(v) for k, v in snapshot.items()}
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"payload.snapshot: values must be numbers ({exc})") from None
        return {"actions": recommend(clean)}
