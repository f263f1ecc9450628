"""Publishes that wait for Redis replicas: LPUSH and `WAIT <replicas> <ms>` on one connection.

Why: Redis replicates asynchronously, so a message a primary acknowledged and then lost in a
failover before its replica copied it is gone (`make chaos-ha` measures how many). WAIT makes
the publisher wait until `publish_replicas` replicas have the write, for at most
`publish_wait_ms`: after each direct publish, and once per flush of a publish batch (the
router's forwards, `agents loadtest`). It narrows the window, it does not close it: Redis may
still promote a replica that missed the write, and a WAIT that times out only counts and logs (a
retry would publish the message twice). WAIT counts the writes of its own connection, so it
shares the publish's pipeline.
"""

from __future__ import annotations

from typing import Any

import structlog
from kombu.exceptions import BatchPublishError
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps

from agents.telemetry.catalog import PUBLISHES_UNREPLICATED
from agents.telemetry.store import write
from agents.telemetry.tally import Tally

log = structlog.get_logger("agents.transport")


class ReplicatedBatch(kombu_redis.PublishBatch):
    """kombu's publish batch (the router's forwards, `agents loadtest`) whose flush ends with WAIT
    in the same pipeline. The flush is kombu's own otherwise (tasks/internals/kombu.py)."""

    def flush(self) -> None:
        channel = self.channel
        replicas = int(channel.publish_replicas)
        if not replicas or not self._buffered:
            super().flush()
            return
        self._check_usable()
        self.pipeline.execute_command("WAIT", replicas, int(channel.publish_wait_ms))
        try:
            replies = self.pipeline.execute()
        except BaseException as exc:
            self._failed = exc
            self._buffered = 0
            self.pipeline.reset()
            if isinstance(exc, Exception):
                raise BatchPublishError("Redis publish batch failed; delivery is uncertain") from exc
            raise
        self._buffered = 0
        short(channel, "batch", int(replies[-1]), replicas)


def short(channel: Any, queue: str, replicated: int, wanted: int) -> None:
    """Count and log a publish the replicas did not confirm in time (nothing when they did)."""
    if replicated >= wanted:
        return
    tally = Tally()
    tally.inc(PUBLISHES_UNREPLICATED, (queue,))
    with channel.conn_or_acquire() as client:
        write(client, tally)
    log.warning(
        "publish_not_replicated", queue=queue, replicas=replicated, wanted=wanted,
        waited_ms=channel.publish_wait_ms,
    )  # fmt: skip


class ReplicatedPublish(kombu_redis.Channel):
    """A Redis channel whose direct publishes wait for `publish_replicas` replicas (0: no wait)."""

    from_transport_options = (  # type: ignore[assignment]
        *kombu_redis.Channel.from_transport_options,
        "publish_replicas",
        "publish_wait_ms",
    )
    publish_replicas = 0
    publish_wait_ms = 100

    def create_publish_batch(self, max_size: int) -> ReplicatedBatch:
        return ReplicatedBatch(self, max_size)

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        # A publish batch waits once, at its flush (ReplicatedBatch).
        if not self.publish_replicas or kwargs.get("_publish_batch") is not None:
            super()._put(queue, message, **kwargs)
            return
        key = self._q_for_pri(queue, self._get_message_priority(message, reverse=False))
        with self.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
            pipe.lpush(key, dumps(message))
            if self._expires and queue in self._expires:
                for step in self.priority_steps:
                    pipe.pexpire(self._q_for_pri(queue, step), self._expires[queue])
            pipe.execute_command("WAIT", int(self.publish_replicas), int(self.publish_wait_ms))
            replicated = int(pipe.execute()[-1])
        short(self, queue, replicated, int(self.publish_replicas))
