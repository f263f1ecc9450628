"""kombu's Redis transport, taking up to a prefetch window of messages per poll instead of one.

Profiled under `agents loadtest` (py-spy, worker main process): about 70% of a batch worker's
main loop went to three Redis round trips per message: the BRPOP that fetched it, the
pipeline that records it as unacked (ZADD + HSET) and the one that acks it (ZREM + HDEL). Here
the BRPOP is followed by one Lua script that records that message as unacked and pops and
records up to a prefetch window more from the same list, atomically: a worker killed at any
moment never holds a bulk-popped message that Redis does not list as unacked. Batch tasks ack a
whole batch in one pipeline (`ack_many`). Between BRPOP's reply and the script, the first message
exists only in the worker, exactly as between kombu's own BRPOP and its unacked pipeline (`make
chaos` lost one request when the script was not atomic; that window is kombu's). Message
format, unacked bookkeeping, visibility-timeout restore and priorities are kombu's own, so plain
kombu workers and clients interoperate.

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
from kombu.utils.json import loads

from tasks.internals.kombu import deliver, mark_acked, remove_unacked

# Messages taken per poll at most (bounded also by the consumer's prefetch window).
BULK_MAX = 200

# Records ARGV[3] (the message BRPOP returned) and up to ARGV[2] more popped from KEYS[1] as
# unacked, in kombu's format: HSET tag -> [payload, exchange, routing_key], ZADD tag -> time.
# The payload text is embedded as is (cjson would re-encode [] as {}).
_POP_AND_RECORD = """
local function record(raw)
  local p = cjson.decode(raw)['properties']
  local d = p['delivery_info']
  redis.call('ZADD', KEYS[3], ARGV[1], p['delivery_tag'])
  redis.call('HSET', KEYS[2], p['delivery_tag'],
    '[' .. raw .. ',' .. cjson.encode(d['exchange']) .. ',' .. cjson.encode(d['routing_key']) .. ']')
end
record(ARGV[3])
local more = tonumber(ARGV[2])
if more < 1 then return {} end
local items = redis.call('RPOP', KEYS[1], more)
if not items then return {} end
for _, raw in ipairs(items) do record(raw) end
return items
"""


class QoS(kombu_redis.QoS):
    """Redis QoS that records a bulk's unacked entries together and acks many in one pipeline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._recorded: set[str] = set()
        self._script: Any = None

    def take(self, client: Any, key: bytes, first: bytes, more: int) -> list[dict[str, Any]]:
        """Record `first` as unacked and pop and record up to `more` others from `key`, atomically;
        returns the decoded messages."""
        if self._script is None:
            self._script = client.register_script(_POP_AND_RECORD)
        keys = [key, self.unacked_key, self.unacked_index_key]
        items = self._script(keys=keys, args=[time(), more, first], client=client)
        payloads = [loads(bytes_to_str(item)) for item in [first, *(items or ())]]
        self._recorded.update(payload["properties"]["delivery_tag"] for payload in payloads)
        return payloads

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
                remove_unacked(self, tag, pipe)
            pipe.execute()
        for tag in delivery_tags:
            virtual.QoS.ack(self, tag)


class Channel(kombu_redis.Channel):
    """Redis channel whose BRPOP reply is followed by an RPOP of up to the prefetch window.

    `_brpop_read` and the attributes it resets are kombu's private parts (tasks/internals/kombu.py).
    """

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
        room = self.qos.can_consume_max_estimate()
        more = BULK_MAX - 1 if room is None else min(BULK_MAX, room) - 1
        # The BRPOP connection belongs to the event loop; the script goes through the pool.
        with self.conn_or_acquire() as client:
            payloads = self.qos.take(client, key, first, max(0, more))
        for payload in payloads:
            deliver(self, payload, queue)
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
        mark_acked(message)
    return True
