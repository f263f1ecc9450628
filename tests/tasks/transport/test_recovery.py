"""The reliable fetch against a real Redis and a real killed process: what a consumer took is
recorded at the moment it is taken, and comes back once the consumer's heartbeat stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Producer, Queue
from structlog.testing import capture_logs

from agents.names import BROKER_CONSUMERS_KEY, BROKER_MALFORMED_KEY, broker_owned_key
from agents.stack.servers import start_redis, stop_all
from tasks.transport import Transport
from tests.conftest import REDIS_PORT

pytestmark = pytest.mark.servers

URL = f"redis://127.0.0.1:{REDIS_PORT}/10"  # a database of its own: no worker of the session uses it
NAME = "recovery-test"
QUEUE = Queue(NAME, Exchange(NAME, type="direct"), routing_key=NAME)
OPTIONS = {"consumer_dead_seconds": 2}


def publish(count: int) -> None:
    with Connection(URL) as connection:  # a plain kombu producer, as any Celery client
        producer = Producer(connection.channel())
        for n in range(count):
            producer.publish({"n": n}, exchange=QUEUE.exchange, routing_key=NAME, declare=[QUEUE])


def consume_all(expected: int, no_ack: bool = False) -> list[Any]:
    """Take `expected` messages with the reliable fetch, acking each (unless no_ack)."""
    seen: list[Any] = []

    def take(body: dict[str, int], message: Any) -> None:
        seen.append(message)
        if not no_ack:
            message.ack()

    with Connection(URL, transport=Transport, transport_options=OPTIONS) as connection:
        consumer = Consumer(connection.channel(), [QUEUE], callbacks=[take], no_ack=no_ack)
        consumer.consume()
        deadline = time.monotonic() + 20
        while len(seen) < expected and time.monotonic() < deadline:
            connection.drain_events(timeout=2)
    return seen


def test_a_killed_consumers_messages_are_recorded_and_come_back_when_its_heartbeat_stops(
    raw: redis.Redis,
) -> None:
    publish(20)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.tasks.transport.consumer_child", URL, NAME, "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "5"
        consumers = [c.decode() for c in raw.zrange(BROKER_CONSUMERS_KEY, 0, -1)]  # type: ignore[union-attr]
        assert len(consumers) == 1
        # Taken means recorded: the unacked hash and the taker's owned set hold all five.
        assert raw.hlen("unacked") == 5 and raw.llen(NAME) == 15
        assert raw.scard(broker_owned_key(consumers[0])) == 5
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()

    with Connection(URL, transport=Transport, transport_options=OPTIONS) as connection:
        channel = connection.channel()
        deadline = time.monotonic() + 15
        restored = 0
        while not restored and time.monotonic() < deadline:
            time.sleep(0.5)
            raw.delete("agents:broker:sweep")  # the lock outlives a sweep; tests sweep back to back
            restored = channel.sweep_dead_consumers()
        assert restored == 5
        assert raw.llen(NAME) == 20 and raw.hlen("unacked") == 0
        assert raw.zscore(BROKER_CONSUMERS_KEY, consumers[0]) is None
    seen = consume_all(20)
    assert sorted(m.payload["n"] for m in seen) == list(range(20))
    assert sum(bool(m.delivery_info.get("redelivered")) for m in seen) == 5


def test_a_live_consumer_is_not_swept(raw: redis.Redis) -> None:
    publish(3)
    with Connection(URL, transport=Transport, transport_options=OPTIONS) as connection:
        held: list[Any] = []
        consumer = Consumer(connection.channel(), [QUEUE], callbacks=[lambda body, m: held.append(m)])
        consumer.consume()
        connection.drain_events(timeout=5)
        assert len(held) == 3
        with Connection(URL, transport=Transport, transport_options=OPTIONS) as other:
            assert other.channel().sweep_dead_consumers() == 0  # its heartbeat is fresh
        assert raw.hlen("unacked") == 3
        for message in held:
            message.ack()
    assert raw.hlen("unacked") == 0 and raw.llen(NAME) == 0


def test_no_ack_consumers_leave_nothing_unacked(raw: redis.Redis) -> None:
    publish(5)
    seen = consume_all(5, no_ack=True)
    assert len(seen) == 5
    assert raw.hlen("unacked") == 0 and raw.zcard("unacked_index") == 0
    assert not [k for k in raw.scan_iter("agents:broker:owned:*") if raw.scard(k)]


def test_malformed_raw_messages_are_set_aside_and_the_others_delivered(raw: redis.Redis) -> None:
    publish(1)  # declares the queue's binding
    raw.lpush(NAME, b"not json at all", b'{"body": "no properties"}', b'{"properties": {"delivery_tag": 7}}')
    publish(2)
    seen = consume_all(3)
    assert sorted(m.payload["n"] for m in seen) == [0, 0, 1]
    assert raw.lrange(BROKER_MALFORMED_KEY, 0, -1) == [
        b'{"properties": {"delivery_tag": 7}}',
        b'{"body": "no properties"}',
        b"not json at all",
    ]
    assert raw.llen(NAME) == 0 and raw.hlen("unacked") == 0


def test_a_heartbeat_or_sweep_that_cannot_reach_redis_is_logged_not_raised(tmp_path: Path) -> None:
    # The timers run on the worker's event loop: an error escaping them is "Error in timer", and
    # one raised while naming the errors to catch hid the real one (seen in the partition drill).
    server = start_redis(tmp_path / "redis")
    try:
        connection = Connection(server.url, transport=Transport)
        Consumer(connection.channel(), [QUEUE], accept=["json"]).consume()  # the timers act on it
    finally:
        stop_all([server])  # Redis goes away under a consumer that lives on
    with capture_logs() as logs:
        connection.transport._heartbeat()
        connection.transport._sweep()
    assert [entry["event"] for entry in logs] == ["broker_heartbeat_failed", "broker_sweep_failed"]
