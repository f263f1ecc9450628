"""The platform's counters in Redis: one hash that every process only adds to."""

from __future__ import annotations

from typing import Any

import redis

from agents.names import METRICS_KEY
from agents.telemetry.tally import Decoded, Tally, decode


def add_to(pipe: Any, tally: Tally) -> None:
    """Queue the tally's increments on a Redis pipeline (the caller executes it)."""
    for key, amount in tally.counts.items():
        pipe.hincrby(METRICS_KEY, key, amount)
    for key, total in tally.sums.items():
        pipe.hincrbyfloat(METRICS_KEY, key, total)


def write(client: redis.Redis, tally: Tally) -> None:
    """Write a tally in one round trip."""
    if tally:
        pipe = client.pipeline(transaction=False)
        add_to(pipe, tally)
        pipe.execute()


def read(client: redis.Redis) -> Decoded:
    """Every counter and histogram written so far."""
    raw: dict[Any, Any] = client.hgetall(METRICS_KEY)
    return decode((_text(k), _text(v)) for k, v in raw.items())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
