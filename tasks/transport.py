"""kombu's Redis transport, taking up to a prefetch window of messages per poll instead of one.

Profiled under `agents loadtest` (py-spy, worker main process): about 70% of a batch worker's
main loop went to three Redis round trips per message: the BRPOP that fetched it, the
pipeline that records it as unacked (ZADD + HSET) and the one that acks it (ZREM + HDEL). Here
the BRPOP is followed by one RPOP with a count from the same list, the unacked records of all
those messages go in one pipeline before any of them is handed on, and batch tasks ack a whole
batch in one pipeline (`ack_many`). Message format, unacked bookkeeping, visibility-timeout
restore and priorities are kombu's own, so plain kombu workers and clients interoperate.

Selected in celeryconfig with `broker_transport` for `redis://` URLs (RPOP with a count needs
Redis 6.2 or newer).
"""

from __future__ import annotations

from collections.abc import Sequence
from queue import Empty
from time import time
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

# Messages taken per poll at most (bounded also by the consumer's prefetch window).
BULK_MAX = 200


class QoS(kombu_redis.QoS):
    """Redis QoS that records a bulk's unacked entries together and acks many in one pipeline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._recorded: set[str] = set()

    def record_unacked(self, payloads: Sequence[dict[str, Any]]) -> None:
        """The same entries `append` writes, for several messages in one round trip."""
        now = time()
        with self.channel.conn_or_acquire() as client:
            pipe = client.pipeline()
            for payload in payloads:
                properties = payload["properties"]
                tag = properties["delivery_tag"]
                delivery = properties["delivery_info"]
                pipe.zadd(self.unacked_index_key, {tag: now})
                pipe.hset(
                    self.unacked_key, tag, dumps([payload, delivery["exchange"], delivery["routing_key"]])
                )
            pipe.execute()
        self._recorded.update(p["properties"]["delivery_tag"] for p in payloads)

    def append(self, message: Any, delivery_tag: str) -> None:
        """Track a delivered message; Redis already holds its unacked entry if it came in a bulk."""
        if delivery_tag in self._recorded:
            self._recorded.discard(delivery_tag)
            virtual.QoS.append(self, message, delivery_tag)
        else:
            super().append(message, delivery_tag)

    def ack_many(self, delivery_tags: Sequence[str]) -> None:
        """Ack several messages with one pipeline."""
        with self.pipe_or_acquire() as pipe:
            for tag in delivery_tags:
                self._remove_from_indices(tag, pipe)
            pipe.execute()
        for tag in delivery_tags:
            virtual.QoS.ack(self, tag)


class Channel(kombu_redis.Channel):
    """Redis channel whose BRPOP reply is followed by an RPOP of up to the prefetch window."""

    QoS = QoS

    def _brpop_read(self, **options: Any) -> bool:
        try:
            try:
                reply = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if not reply:
                raise Empty()
            key, first = reply
            queue = bytes_to_str(key).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)
        finally:
            self._in_poll = None  # type: ignore[assignment]  # kombu's own reset, as in its _brpop_read
            self._flush_brpop_reauth()
        raw = [first]
        room = self.qos.can_consume_max_estimate()
        more = BULK_MAX - 1 if room is None else min(BULK_MAX, room) - 1
        if more > 0:
            # The BRPOP connection belongs to the event loop; the RPOP goes through the pool.
            with self.conn_or_acquire() as client:
                raw.extend(client.rpop(key, more) or ())
        payloads = [loads(bytes_to_str(item)) for item in raw]
        if len(payloads) > 1:
            self.qos.record_unacked(payloads)
        for payload in payloads:
            self.connection._deliver(payload, queue)
        return True


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with bulk fetch (see the module docstring)."""

    Channel = Channel


def ack_many(messages: Sequence[Any]) -> bool:
    """Ack messages of one bulk-capable channel in one round trip; False if not possible here."""
    channels = {id(m.channel) for m in messages}
    if not messages or len(channels) != 1 or not isinstance(messages[0].channel.qos, QoS):
        return False
    if any(m.acknowledged for m in messages):
        return False
    messages[0].channel.qos.ack_many([m.delivery_tag for m in messages])
    for message in messages:
        message._state = "ACK"
    return True
