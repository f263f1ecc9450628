"""The engines the chaos drills load; each handler counts its own runs in Redis.

Each run adds one to `starts` before its work (and notes its start time and engine) and to
`finishes` after it (Redis hashes keyed by task id), so the ledger sees a request that ran twice,
and when a request a fault caught in flight ran again.
- `ledger`: a batch engine that works WORK_SECONDS (the kill drills);
- `chaos_blue`, `chaos_green`: the demo's tunable engine (agents/faults.py makes it slow or
  failing) on one capability, for the breaker drill;
- `chaos_limits`: a batch engine whose request sleeps past its soft or hard time limit on demand.
Loaded with AGENT_ENGINES=bench.chaos.engine:ledger,... (ENGINES)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from agents.base import BaseAgent
from agents.connections import redis_client
from agents.engines.tunable import TunableEngine
from agents.models import AgentConfig, TaskRequest

CAPABILITY = "chaos"
BREAKER_CAPABILITY = "chaos-breaker"
LIMITS_CAPABILITY = "chaos-limits"
STARTS_KEY = "agents:chaos:starts"
FINISHES_KEY = "agents:chaos:finishes"
RUNS_KEY = "agents:chaos:runs"  # list of "task id|start time|engine" per run: when a request ran again
WORK_SECONDS = 0.002
# The limits engine's hard limit; its soft one is SOFT_TIME_LIMIT_MARGIN_SECONDS before (the
# drill's fleet sets 4 s).
LIMITS_HARD_SECONDS = 6
ENGINES = ",".join(
    f"bench.chaos.engine:{name}" for name in ("ledger", "chaos_blue", "chaos_green", "chaos_limits")
)


def count_start(task_id: str, engine: str) -> None:
    pipe = redis_client().pipeline(transaction=False)
    pipe.hincrby(STARTS_KEY, task_id, 1)
    pipe.rpush(RUNS_KEY, f"{task_id}|{time.time():.3f}|{engine}")
    pipe.execute()


def count_finish(task_id: str) -> None:
    redis_client().hincrby(FINISHES_KEY, task_id, 1)


class LedgerEngine(BaseAgent):
    """Counts the run, works WORK_SECONDS, counts the finish."""

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        count_start(task_request.task_id, self.name)
        await asyncio.sleep(WORK_SECONDS)
        count_finish(task_request.task_id)
        return {"ok": True}


class LedgerTunable(TunableEngine):
    """The demo's tunable engine (delay and failure ratio from its faults hash), counted."""

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        count_start(task_request.task_id, self.name)
        result = await super()._handle_task(task_request)
        count_finish(task_request.task_id)
        return result


class LimitsEngine(BaseAgent):
    """Sleeps the payload's `sleep` seconds (blocking the pool process, as a stuck handler does);
    with `hard` it also ignores the soft limit, so only the hard limit stops it."""

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        count_start(task_request.task_id, self.name)
        payload = task_request.payload
        until = time.monotonic() + float(payload.get("sleep", WORK_SECONDS))
        while time.monotonic() < until:
            try:
                time.sleep(max(0.0, until - time.monotonic()))
            except SoftTimeLimitExceeded:
                if not payload.get("hard"):
                    raise
        count_finish(task_request.task_id)
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


def _tunable(name: str) -> LedgerTunable:
    return LedgerTunable(
        AgentConfig(
            name=name,
            agent_type="custom",
            capabilities=[BREAKER_CAPABILITY],
            max_concurrent_tasks=2,
            queue_size=5000,
            task_timeout_seconds=30,
        )
    )


chaos_blue = _tunable("chaos_blue")
chaos_green = _tunable("chaos_green")
chaos_limits = LimitsEngine(
    AgentConfig(
        name="chaos_limits",
        agent_type="custom",
        capabilities=[LIMITS_CAPABILITY],
        max_concurrent_tasks=2,
        queue_size=50000,
        task_timeout_seconds=LIMITS_HARD_SECONDS,
        batch_size=10,
    )
)
