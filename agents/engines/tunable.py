"""A small engine whose delay and failure ratio can be changed while it runs (`agents faults`).

It drives `agents demo` and the end-to-end tests of the learning router, the monitor and the
optimizer: two instances, `demo_blue` and `demo_green`, serve the same `demo` capability, so
routing has a choice to learn. Load them with AGENT_ENGINES=agents.engines.tunable:demo_blue,...
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from agents.base import BaseAgent
from agents.connections import redis_client
from agents.models import AgentConfig, TaskRequest
from agents.names import CAP_DEMO, faults_key

# Each request takes this long unless a fault says otherwise: two processes serve ~50 req/s.
BASE_DELAY_MS = 40.0


class InjectedFailure(RuntimeError):
    """The failure `agents faults --fail-ratio` asked for: an engine fault, so it is not retried
    and counts against the engine (breaker, failure ratio, routing)."""


class TunableEngine(BaseAgent):
    """Sleeps `delay_ms` (default BASE_DELAY_MS) and fails a `fail_ratio` share of requests, both
    read per request from the engine's faults hash in Redis."""

    async def _handle_task(self, task_request: TaskRequest) -> dict[str, Any]:
        faults = redis_client().hgetall(faults_key(self.name))
        delay_ms = float(faults.get(b"delay_ms", BASE_DELAY_MS))
        fail_ratio = float(faults.get(b"fail_ratio", 0.0))
        await asyncio.sleep(delay_ms / 1000)
        if random.random() < fail_ratio:  # nosec B311 # fault injection for the demo, not cryptography
            raise InjectedFailure(f"{self.name}: injected failure (fail_ratio {fail_ratio:g})")
        return {"engine": self.name, "delay_ms": delay_ms}


def _config(name: str) -> AgentConfig:
    return AgentConfig(
        name=name,
        agent_type="custom",
        capabilities=[CAP_DEMO],
        max_concurrent_tasks=2,
        queue_size=5000,
        task_timeout_seconds=30,
    )


demo_blue = TunableEngine(_config("demo_blue"))
demo_green = TunableEngine(_config("demo_green"))
DEMO_ENGINES = ("agents.engines.tunable:demo_blue", "agents.engines.tunable:demo_green")
