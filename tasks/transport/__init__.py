"""kombu's Redis transport made reliable: an atomic fetch, bulk acks, and fast recovery of a dead
consumer's messages. Message format, unacked bookkeeping, visibility-timeout restore and
priorities stay kombu's own, so plain Celery clients, the `celery` CLI and Flower work unchanged.

- channel.py: the fetch (one Lua script instead of BRPOP), QoS with bulk acks, the Transport;
- scripts.py: the Lua scripts; recovery.py: heartbeats and the dead-consumer sweep;
- replication.py: publishes that wait for replicas (WAIT); sentinel.py: the same through Sentinel.

Selected in celeryconfig with `broker_transport` for `redis://`, `rediss://` and `sentinel://` URLs
(RPOP with a count needs Redis 6.2 or newer).
"""

from tasks.transport.channel import BULK_MAX, QoS, ReliableChannel, Transport, ack_many
from tasks.transport.sentinel import SentinelTransport

__all__ = ["BULK_MAX", "QoS", "ReliableChannel", "SentinelTransport", "Transport", "ack_many"]
