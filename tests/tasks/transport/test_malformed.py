"""Raw messages the reliable fetch cannot hand on, against a real Redis: each is moved intact to
the malformed list, counted, and the messages fetched with it are delivered; nothing is lost."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Producer, Queue

from agents.names import BROKER_MALFORMED_KEY
from agents.telemetry import catalog as m
from agents.telemetry.store import read
from tasks.refusals import MALFORMED
from tasks.transport import Transport
from tests.conftest import REDIS_PORT

pytestmark = pytest.mark.servers

URL = f"redis://127.0.0.1:{REDIS_PORT}/10"
QUEUE = Queue("malformed-test", Exchange("malformed-test", type="direct"), routing_key="malformed-test")


def valid(connection: Connection, count: int) -> list[bytes]:
    """Publish `count` good messages; their stored (raw) form, oldest first."""
    producer = Producer(connection.channel())
    for n in range(count):
        producer.publish({"n": n}, exchange=QUEUE.exchange, routing_key=QUEUE.name, declare=[QUEUE])
    stored: list[bytes] = redis.Redis.from_url(URL).lrange(QUEUE.name, 0, -1)  # type: ignore[assignment]
    return stored[::-1]


def edited(template: bytes, change: Any, raw_header: bytes = b"") -> bytes:
    """A stored message with `change` applied to its decoded form; `raw_header` goes in as is."""
    message = json.loads(template)
    message["properties"]["delivery_tag"] = "poison-tag"  # its own tag: the copy is another message
    change(message)
    text = json.dumps(message).encode()
    return text.replace(b'"@RAW@"', raw_header) if raw_header else text


def set_header(name: str) -> Any:
    return lambda message: message["headers"].__setitem__(name, "@RAW@")


def refused_malformed(redis_client: Any) -> float:
    counters = read(redis_client).counters.get(m.MESSAGES_REFUSED.name, {})
    return counters.get((QUEUE.name, MALFORMED), 0.0)


def take_all(connection: Connection, expect: int) -> list[int]:
    """Consume until `expect` messages arrived, acking each; their `n`, in order."""
    seen: list[int] = []

    def take(body: dict[str, int], message: Any) -> None:
        seen.append(body["n"])
        message.ack()

    consumer = Consumer(connection.channel(), [QUEUE], callbacks=[take], accept=["json"])
    consumer.qos(prefetch_count=100)
    consumer.consume()
    for _ in range(50):
        if len(seen) >= expect:
            break
        connection.drain_events(timeout=5)
    return seen


@pytest.mark.parametrize(
    "poison",
    [
        # cjson.encode refuses NaN in the unacked entry: FETCH once failed after its pops (LOST).
        lambda t: edited(t, lambda msg: msg["properties"]["delivery_info"].update(exchange=float("nan"))),
        lambda t: edited(t, lambda msg: msg.__setitem__("headers", ["x"])),  # kombu's restore writes into it
        lambda t: edited(t, lambda msg: msg["properties"].__setitem__("delivery_info", [1])),
        lambda t: edited(t, set_header("x-deep"), b"[" * 995 + b"]" * 995),  # cjson yes, Python no
        lambda t: edited(t, set_header("x-ctrl"), b'"a\x01"'),  # a raw control character
        lambda t: edited(t, set_header("x-big"), b"1" * 5000),  # an int Python will not convert
        lambda t: edited(t, lambda msg: msg.__setitem__("body", "!!!notbase64=")),  # Message() fails
        lambda t: edited(t, lambda msg: msg.__setitem__("content-encoding", 5)),
    ],
    ids=["nan_exchange", "headers_array", "delivery_info_array", "deep", "control_char", "huge_int",
         "bad_base64", "encoding_number"],
)  # fmt: skip
def test_a_message_the_worker_cannot_read_is_set_aside_and_its_fetch_delivered(
    raw: redis.Redis, redis_client: Any, poison: Any
) -> None:
    with Connection(URL, transport=Transport) as connection:
        stored = valid(connection, 6)
        bad = poison(stored[0])
        # The poison in the middle of one fetch: three good messages before it, three after.
        raw.delete(QUEUE.name)
        raw.rpush(QUEUE.name, *reversed(stored[3:]), bad, *reversed(stored[:3]))
        before = refused_malformed(redis_client)

        assert sorted(take_all(connection, 6)) == list(range(6))
    assert raw.lrange(BROKER_MALFORMED_KEY, 0, -1) == [bad]  # intact
    assert raw.llen(QUEUE.name) == 0
    assert raw.hlen("unacked") == 0 and raw.zcard("unacked_index") == 0
    assert refused_malformed(redis_client) == before + 1
