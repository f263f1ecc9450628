"""Private parts of kombu's Redis transport used by bulk fetch (tasks/transport.py) and bulk
acks. Checked with kombu 5.7.0."""

from __future__ import annotations

from typing import Any

from kombu.message import Message
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

from tasks.internals import PrivatePart

CHECKED_WITH = "kombu 5.7.0"


def deliver(channel: kombu_redis.Channel, payload: dict[str, Any], queue: str) -> None:
    """Hand a fetched message to the consumer, as kombu's own BRPOP reader does."""
    channel.connection._deliver(payload, queue)


def mark_acked(message: Message) -> None:
    """Record that a message was acked in bulk (its own ack() would ack it a second time)."""
    message._state = "ACK"


def remove_unacked(qos: kombu_redis.QoS, delivery_tag: str, pipe: Any) -> None:
    """Queue the removal of a message's unacked entries on `pipe` (the ack's Redis side)."""
    qos._remove_from_indices(delivery_tag, pipe)


PARTS = [
    PrivatePart(
        kombu_redis.Channel,
        "_brpop_read",
        ("self", "options"),
        "the reliable fetch overrides it: reads the fetch script's reply instead of BRPOP's",
    ),
    PrivatePart(
        kombu_redis.Channel,
        "_brpop_start",
        ("self", "timeout"),
        "the reliable fetch overrides it: sends the fetch script instead of BRPOP",
    ),
    PrivatePart(kombu_redis.Channel, "_in_poll", "instance", "set while a fetch is pending, as kombu does"),
    PrivatePart(kombu_redis.Channel, "_brpop_sent_at", "attribute", "kombu's BRPOP health check reads it"),
    PrivatePart(
        kombu_redis.Channel,
        "_q_for_pri",
        ("self", "queue", "pri"),
        "names the priority lists the fetch tries",
    ),
    PrivatePart(
        kombu_redis.Channel,
        "_flush_brpop_reauth",
        ("self",),
        "called after each BRPOP reply, as kombu does",
    ),
    PrivatePart(
        kombu_redis.Channel, "_queue_cycle", "instance", "rotated to the queue just served, for fairness"
    ),
    PrivatePart(
        virtual.Transport,
        "_deliver",
        ("self", "message", "queue"),
        "hands each bulk-fetched message to its consumer",
    ),
    PrivatePart(
        kombu_redis.QoS,
        "_remove_from_indices",
        ("self", "delivery_tag", "pipe"),
        "overridden so ack, reject and restore also leave the consumer's owned set",
    ),
    PrivatePart(Message, "_state", "instance", "messages acked in bulk are marked acked"),
    PrivatePart(
        kombu_redis.PublishBatch, "_check_usable", ("self",), "ReplicatedBatch.flush checks as kombu's does"
    ),
    PrivatePart(kombu_redis.PublishBatch, "_buffered", "instance", "ReplicatedBatch.flush: commands pending"),
    PrivatePart(kombu_redis.PublishBatch, "_failed", "instance", "ReplicatedBatch.flush: a failed flush"),
    PrivatePart(
        kombu_redis.QoS,
        "can_consume_max_estimate",
        ("self",),
        "sizes a bulk pop to the prefetch window",
    ),
]
