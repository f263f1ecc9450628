"""The fleet at a glance: engines, capabilities, live workers, queue depth and breaker state."""

from __future__ import annotations

from dataclasses import dataclass

from agents.catalog import engines
from agents.connections import registry
from agents.routing import BreakerState


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
    reg = registry()
    workers = reg.live_workers()
    candidates = {c.engine: c for c in reg.candidates()}
    rows = []
    for name in sorted(set(candidates) | set(engines())):
        candidate = candidates.get(name)
        if candidate is None:
            config = engines()[name].config
            assert config is not None
            rows.append(
                EngineRow(
                    name, list(config.capabilities), [], 0, config.queue_size, BreakerState.CLOSED, 1.0, None
                )
            )
            continue
        rows.append(
            EngineRow(
                engine=name,
                capabilities=sorted(candidate.capabilities),
                workers=sorted(workers.get(name, [])),
                depth=candidate.depth,
                queue_size=candidate.queue_size,
                breaker=candidate.breaker,
                success_rate=candidate.success_rate,
                latency_ms=candidate.latency_ms,
            )
        )
    return rows
