"""The engine the chaos drills load: a batch engine whose handler counts its own runs.

Each run adds one to `starts` before its work and to `finishes` after it (Redis hashes keyed by
task id), so the ledger sees a request that ran twice and whether the first run had finished.
Loaded with AGENT_ENGINES=bench.chaos.engine:ledger."""

from __future__ import annotations

import asyncio
from typing import Any

from agents.base import BaseAgent
from agents.connections import redis_client
from agents.models import AgentConfig, TaskRequest

CAPABILITY = "chaos"
STARTS_KEY = "agents:chaos:starts"
FINISHES_KEY = "agents:chaos:finishes"
WORK_SECONDS = 0.002


class LedgerEngine(BaseAgent):
    """Counts the run, works WORK_SECONDS, counts the finish."""

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        redis_client().hincrby(STARTS_KEY, task_request.task_id, 1)
        await asyncio.sleep(WORK_SECONDS)
        redis_client().hincrby(FINISHES_KEY, task_request.task_id, 1)
        return {"ok": True}


ledger = LedgerEngine(
    AgentConfig(
        name="ledger",
        agent_type="custom",
        capabilities=[CAPABILITY],
        max_concurrent_tasks=2,
        queue_size=50000,
        task_timeout_seconds=60,
        batch_size=50,
    )
)
