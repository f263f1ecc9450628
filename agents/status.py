"""The fleet at a glance: engines, capabilities, live workers, queue depth and breaker state."""

from __future__ import annotations

from dataclasses import dataclass

from agents.connections import registry
from agents.routing.decision import BreakerState
from agents.routing.live import candidates_for


@dataclass(frozen=True)
class EngineRow:
    """One line of `agents status`."""

    engine: str
    capabilities: list[str]
    workers: list[str]
    depth: int
    queue_size: int
    breaker: BreakerState
    success_rate: float
    latency_ms: float | None


def fleet() -> list[EngineRow]:
    """Every engine known to the registry or to this process's catalog, sorted by name."""
    workers = registry().live_workers()
    return [
        EngineRow(
            engine=c.engine,
            capabilities=sorted(c.capabilities),
            workers=sorted(workers.get(c.engine, [])),
            depth=c.depth,
            queue_size=c.queue_size,
            breaker=c.breaker,
            success_rate=c.success_rate,
            latency_ms=c.latency_ms,
        )
        for c in sorted(candidates_for(None), key=lambda c: c.engine)
    ]
