"""A custom engine only its own worker knows: AGENT_ENGINES names it for that worker alone, as a
team deploying a new engine next to a running platform would."""

from __future__ import annotations

from typing import Any

from agents import AgentConfig, BaseAgent, TaskRequest


class LateEngine(BaseAgent):
    """Echoes its request; the router, the bridge and the tests' own process have no code for it."""

    config = AgentConfig(name="late", capabilities=["late_arrival"], max_concurrent_tasks=1)

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        return {"engine": self.name, "task_id": task_request.task_id, "payload": task_request.payload}
