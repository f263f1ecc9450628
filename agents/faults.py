"""Faults injected into the tunable engines (agents/engines/tunable.py), kept in Redis so every
worker of the engine sees a change at its next request."""

from __future__ import annotations

import redis

from agents.names import faults_key
from agents.registry import text


def set_faults(client: redis.Redis, engine: str, delay_ms: float | None, fail_ratio: float | None) -> None:
    """Make `engine` slower (delay_ms per request) and/or fail a share of requests (0..1)."""
    if fail_ratio is not None and not 0 <= fail_ratio <= 1:
        raise ValueError(f"fail_ratio must be between 0 and 1, got {fail_ratio:g}")
    if delay_ms is not None and delay_ms < 0:
        raise ValueError(f"delay_ms must not be negative, got {delay_ms:g}")
    pipe = client.pipeline()
    for field, value in (("delay_ms", delay_ms), ("fail_ratio", fail_ratio)):
        if value is not None:
            pipe.hset(faults_key(engine), field, value)
    pipe.execute()


def clear_faults(client: redis.Redis, engine: str) -> None:
    """The engine behaves normally again."""
    client.delete(faults_key(engine))


def all_faults(client: redis.Redis) -> dict[str, dict[str, float]]:
    """Every engine with injected faults, and what they are."""
    prefix = faults_key("")
    found: dict[str, dict[str, float]] = {}
    for key in client.scan_iter(match=f"{prefix}*"):
        engine = text(key).removeprefix(prefix)
        found[engine] = {text(k): float(v) for k, v in client.hgetall(key).items()}
    return found
