"""The bulk-fetch Redis transport against a real Redis: nothing taken is lost or acked early."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Producer, Queue

from tasks.transport import Transport, ack_many
from tests.conftest import REDIS_PORT

pytestmark = pytest.mark.servers

# Its own database: the session's workers keep their unacked entries in database 0.
URL = f"redis://127.0.0.1:{REDIS_PORT}/9"
QUEUE = Queue("bulk-test", Exchange("bulk-test", type="direct"), routing_key="bulk-test")


def publish(connection: Connection, count: int) -> None:
    producer = Producer(connection.channel())
    for n in range(count):
        producer.publish({"n": n}, exchange=QUEUE.exchange, routing_key="bulk-test", declare=[QUEUE])


def take_one_poll(connection: Connection, prefetch: int) -> tuple[Any, list[Any]]:
    """One poll of a consumer with `prefetch` room: its channel and the messages it received."""
    got: list[Any] = []
    channel = connection.channel()
    consumer = Consumer(channel, [QUEUE], callbacks=[lambda body, m: got.append(m)], accept=["json"])
    consumer.qos(prefetch_count=prefetch)
    consumer.consume()
    connection.drain_events(timeout=5)
    return channel, got


def test_one_poll_takes_the_prefetch_window_recorded_as_unacked(raw: redis.Redis) -> None:
    with Connection(URL, transport=Transport) as connection:
        publish(connection, 30)
        _, got = take_one_poll(connection, prefetch=10)
        assert [m.payload["n"] for m in got] == list(range(10))  # oldest first, one poll
        assert raw.hlen("unacked") == 10 and raw.zcard("unacked_index") == 10
        assert raw.llen("bulk-test") == 20
        assert ack_many(got)
        assert raw.hlen("unacked") == 0 and raw.zcard("unacked_index") == 0
        assert all(m.acknowledged for m in got)


def test_messages_taken_but_not_acked_go_back_to_the_queue(raw: redis.Redis) -> None:
    with Connection(URL, transport=Transport) as connection:
        publish(connection, 30)
        channel, got = take_one_poll(connection, prefetch=10)
        assert len(got) == 10
        channel.close()  # a consumer that goes away (warm shutdown) without acking
    assert raw.llen("bulk-test") == 30
    assert raw.hlen("unacked") == 0
    with Connection(URL, transport=Transport) as connection:
        seen: list[int] = []

        def take(body: dict[str, int], message: Any) -> None:
            seen.append(body["n"])
            message.ack()

        consumer = Consumer(connection.channel(), [QUEUE], callbacks=[take])
        consumer.consume()
        while len(seen) < 30:
            connection.drain_events(timeout=5)
    assert sorted(seen) == list(range(30))


def test_a_switch_to_the_next_broker_url_keeps_the_reliable_transport() -> None:
    """kombu takes a new transport from the URL's scheme when it moves to the next URL of a
    failover list; the schemes name our transports, so a worker stays reliable after it."""
    from kombu.transport import get_transport_cls

    from tasks import app
    from tasks.transport import SentinelTransport, Transport

    connection = app.connection_for_write()
    try:
        connection.switch("redis://127.0.0.1:1/0")
        assert type(connection.transport) is Transport
        connection.switch("sentinel://127.0.0.1:2/0")
        assert type(connection.transport) is SentinelTransport
    finally:
        connection.release()
    assert get_transport_cls("rediss") is Transport
