"""Counts of refused requests by kind (shown by `agents status`), kept in one Redis hash."""

from __future__ import annotations

from collections.abc import Mapping

import redis
import structlog

from agents.connections import redis_client
from agents.names import COUNTERS_KEY
from agents.registry import text

log = structlog.get_logger("agents.routing")


def count_rejections(kinds: Mapping[str, int]) -> None:
    """Add a batch's rejections to the counters in one round trip."""
    if not kinds:
        return
    try:
        pipe = redis_client().pipeline(transaction=False)
        for kind, count in kinds.items():
            pipe.hincrby(COUNTERS_KEY, f"rejected:{kind}", count)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("rejections_not_counted", kinds=dict(kinds), error=str(exc))


def rejection_counts() -> dict[str, int]:
    """Rejections by kind (and the bridge's dead letters, `dead_letter:<kind>`) since the start."""
    raw = redis_client().hgetall(COUNTERS_KEY)
    return {text(k).removeprefix("rejected:"): int(v) for k, v in raw.items()}
