"""Publishes that wait for Redis replicas: LPUSH and `WAIT <replicas> <ms>` on one connection.

Why: Redis replicates asynchronously, so a message a primary acknowledged and then lost in a
failover before its replica copied it is gone (`make chaos --ha` measures how many). WAIT makes
the publisher wait until `publish_replicas` replicas have the write, for at most
`publish_wait_ms`. It narrows the window, it does not close it: Redis may still promote a replica
that missed the write, and a WAIT that times out only counts and logs (a retry would publish the
message twice). WAIT counts the writes of its own connection, so both commands share a pipeline.
"""

from __future__ import annotations

from typing import Any

import structlog
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps

from agents.telemetry.catalog import PUBLISHES_UNREPLICATED
from agents.telemetry.store import write
from agents.telemetry.tally import Tally

log = structlog.get_logger("agents.transport")


class ReplicatedPublish(kombu_redis.Channel):
    """A Redis channel whose direct publishes wait for `publish_replicas` replicas (0: no wait)."""

    from_transport_options = (  # type: ignore[assignment]
        *kombu_redis.Channel.from_transport_options,
        "publish_replicas",
        "publish_wait_ms",
    )
    publish_replicas = 0
    publish_wait_ms = 100

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        # kombu's publish batches (unused by Celery and the platform) keep kombu's own path.
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
            if replicated < int(self.publish_replicas):
                tally = Tally()
                tally.inc(PUBLISHES_UNREPLICATED, (queue,))
                write(client, tally)
        if replicated < int(self.publish_replicas):
            log.warning(
                "publish_not_replicated", queue=queue, replicas=replicated, wanted=self.publish_replicas,
                waited_ms=self.publish_wait_ms,
            )  # fmt: skip
