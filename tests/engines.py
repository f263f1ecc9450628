"""Engines used by the tests, registered through AGENT_ENGINES exactly as a user would."""

from __future__ import annotations

import asyncio
from typing import Any

from agents import AgentConfig, BaseAgent, TaskRequest

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
    )

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        await asyncio.sleep(float(task_request.payload.get("sleep", 0)))
        if task_request.payload.get("fail"):
            raise RuntimeError("asked to fail")
        return {"ok": True, "task_id": task_request.task_id}
