"""Consumers' heartbeats, and the sweep that puts a dead consumer's messages back in its queues.

kombu alone brings a dead worker's reserved messages back only once they are older than the
visibility timeout (minutes here, as it must outlast the longest task). Each consumer instead
heartbeats into a sorted set by the server's clock; a consumer silent for `dead_after` seconds is
dead, and any live worker's sweep claims its owned set (tasks/transport/scripts.py CLAIM) and
restores each message with kombu's own restore_by_tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from agents.names import BROKER_CONSUMERS_KEY, BROKER_SWEEP_LOCK_KEY, broker_owned_key
from tasks.transport.scripts import CLAIM, DEAD, HEARTBEAT

log = structlog.get_logger("agents.transport")

DEFAULT_DEAD_AFTER_SECONDS = 30.0


@dataclass(frozen=True)
class Cadence:
    """How often a consumer heartbeats and sweeps, from how long silence means death."""

    dead_after: float = DEFAULT_DEAD_AFTER_SECONDS

    @property
    def heartbeat_every(self) -> float:
        return max(0.5, self.dead_after / 6)  # five heartbeats may be missed before death

    @property
    def sweep_every(self) -> float:
        return max(0.5, self.dead_after / 4)


def heartbeat(client: Any, consumer: str) -> None:
    """Say that `consumer` is alive (server time)."""
    client.eval(HEARTBEAT.text, 1, BROKER_CONSUMERS_KEY, consumer)


def forget(client: Any, consumer: str) -> list[str]:
    """Remove `consumer` from the heartbeats and return the delivery tags it still held."""
    tags = client.eval(CLAIM.text, 2, BROKER_CONSUMERS_KEY, broker_owned_key(consumer), consumer)
    return [t.decode() if isinstance(t, bytes) else str(t) for t in tags or []]


def sweep(client: Any, qos: Any, own: str, cadence: Cadence) -> int:
    """Restore the messages of every consumer silent for `cadence.dead_after`; returns how many.

    One sweeper at a time (a lock that expires with the sweep interval); `qos` is any live
    channel's QoS, whose restore_by_tag puts each message back where it is taken next."""
    if not client.set(BROKER_SWEEP_LOCK_KEY, own, nx=True, px=int(cadence.sweep_every * 1000)):
        return 0
    dead = client.eval(DEAD.text, 1, BROKER_CONSUMERS_KEY, cadence.dead_after)
    restored = 0
    for raw_id, silent in zip(dead[::2], dead[1::2], strict=True):
        consumer = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        if consumer == own:
            continue  # this process is running the sweep, so it is not dead
        tags = forget(client, consumer)
        for tag in tags:
            qos.restore_by_tag(tag, client)
        restored += len(tags)
        log.warning(
            "broker_consumer_dead",
            consumer=consumer,
            silent_seconds=float(silent),
            restored=len(tags),
        )
    return restored
