"""In-process routing: gather live figures, apply the pure decision, count rejections.

The router task, the NATS bridge and any caller that wants to skip the router hop use this.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis
import structlog

from agents.catalog import engines
from agents.connections import redis_client, registry
from agents.names import COUNTERS_KEY
from agents.registry import text
from agents.routing import Candidate

log = structlog.get_logger("agents.router")


def candidates_for(capability: str | None) -> list[Candidate]:
    """Registry candidates (serving `capability`, or all when None), plus engines this process
    knows that never sent a heartbeat (known, but with no live worker)."""
    found = registry().candidates(capability)
    seen = {c.engine for c in found}
    for engine in engines().values():
        if engine.name not in seen and (capability is None or capability in engine.capabilities):
            assert engine.config is not None
            found.append(
                Candidate(
                    engine=engine.name,
                    capabilities=frozenset(engine.capabilities),
                    queue_size=engine.config.queue_size,
                )
            )
    return found


def count_rejections(kinds: Mapping[str, int]) -> None:
    """Add a batch's rejections to the counters in one round trip."""
    try:
        pipe = redis_client().pipeline(transaction=False)
        for kind, count in kinds.items():
            pipe.hincrby(COUNTERS_KEY, f"rejected:{kind}", count)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("rejections_not_counted", kinds=dict(kinds), error=str(exc))


def rejection_counts() -> dict[str, int]:
    """Rejections by kind since the counters were created."""
    raw = redis_client().hgetall(COUNTERS_KEY)
    return {text(k).removeprefix("rejected:"): int(v) for k, v in raw.items()}
