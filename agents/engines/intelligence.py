"""Intelligence engine: serves the router queue; as a handler it explains a routing decision."""

from __future__ import annotations

from typing import Any

from agents.base import BaseAgent
from agents.errors import InvalidRequest
from agents.models import AgentConfig, TaskRequest
from agents.names import CAP_ROUTING, INTELLIGENCE


class IntelligenceEngine(BaseAgent):
    """Answers "where would a request for capability X go now, and why?"."""

    config = AgentConfig(
        name=INTELLIGENCE,
        agent_type="intelligence",
        capabilities=[CAP_ROUTING],
        max_concurrent_tasks=2,
        queue_size=5000,
        task_timeout_seconds=30,
    )

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        from agents.connections import registry
        from agents.routing.decision import decide

        capability = task_request.payload.get("capability")
        if not isinstance(capability, str) or not capability:
            raise InvalidRequest("payload.capability: a capability name to explain is required")
        decision = decide(capability, registry().candidates(capability))
        return {"decision": decision.model_dump()}
