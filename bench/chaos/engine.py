"""The engine the chaos drills load: a batch engine whose handler counts its own runs.

Each run adds one to `starts` before its work (and notes its start time) and to `finishes` after
it (Redis hashes keyed by task id), so the ledger sees a request that ran twice, and when a
request a fault caught in flight ran again.
Loaded with AGENT_ENGINES=bench.chaos.engine:ledger."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from agents.base import BaseAgent
from agents.connections import redis_client
from agents.models import AgentConfig, TaskRequest

CAPABILITY = "chaos"
STARTS_KEY = "agents:chaos:starts"
FINISHES_KEY = "agents:chaos:finishes"
RUNS_KEY = "agents:chaos:runs"  # list of "task id|start time" per run: when a request ran again
WORK_SECONDS = 0.002


class LedgerEngine(BaseAgent):
    """Counts the run, works WORK_SECONDS, counts the finish."""

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        pipe = redis_client().pipeline(transaction=False)
        pipe.hincrby(STARTS_KEY, task_request.task_id, 1)
        pipe.rpush(RUNS_KEY, f"{task_request.task_id}|{time.time():.3f}")
        pipe.execute()
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
