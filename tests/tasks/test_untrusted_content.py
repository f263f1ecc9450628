"""Raw messages the platform must not run, on every queue the fleet serves.

A pickle (content type not in accept_content) that creates a file if anything loads it, under a
real task name and id, must be refused unread: no file, no task_results row, nothing left in
Redis to poison the queue, and one count per queue in agent_messages_refused_total. The router
and the analysis engine are batch tasks (tasks/batching.py), the other queues' tasks run through
Celery's own strategy (tasks/refusals.py): both paths are covered. A body that does not decode
at all goes through Celery's on_decode_error instead, and is counted too.
"""

from __future__ import annotations

import json
import pickle
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery.exceptions import InvalidTaskError
from kombu import Connection, Producer
from kombu.exceptions import ContentDisallowed, DecodeError

from agents.names import (
    BROKER_MALFORMED_KEY,
    MAINTENANCE_QUEUE,
    PRUNE_REGISTRY_TASK,
    ROUTE_TASK,
    ROUTER_QUEUE,
    engine_task_name,
    queue_keys,
)
from agents.settings import get_settings
from agents.telemetry import catalog as m
from agents.telemetry.store import read
from tasks.refusals import (
    BAD_BODY,
    BAD_HEADER,
    CONTENT_TYPE,
    INVALID,
    NOT_A_TASK,
    OTHER_QUEUE,
    UNDECODABLE,
    queue_of,
    reason_of,
)
from tests.conftest import FLEET_QUEUES

pytestmark = pytest.mark.servers

QUEUES = FLEET_QUEUES.split(",")
UNACKED_KEY = "unacked"  # kombu's Redis transport: delivery tag -> message taken, not yet acked
DEADLINE_SECONDS = 30.0
# After the last message left Redis: time for a task it had started to reach task_results
# (the history writer flushes every 0.2 s in tests).
SETTLE_SECONDS = 2.0


class Touch:
    """Unpickling this creates `path`: what loading the message would visibly do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        return (Path.touch, (self.path,))


def task_name(queue: str) -> str:
    """The task a message on `queue` normally carries (so the worker has a strategy for it)."""
    if queue == ROUTER_QUEUE:
        return ROUTE_TASK
    if queue == MAINTENANCE_QUEUE:
        return PRUNE_REGISTRY_TASK
    return engine_task_name(queue)


def publish_raw(
    ids: dict[str, str], body_of: Callable[[str], Any], changed: dict[str, Any] | None = None, **options: Any
) -> None:
    """One message per queue with Celery's protocol 2 headers (some `changed`), published as any
    kombu client with access to Redis could."""
    with Connection(get_settings().redis_url) as connection:
        producer = Producer(connection.default_channel)
        for queue, task_id in ids.items():
            headers = {
                "lang": "py", "task": task_name(queue), "id": task_id, "root_id": task_id,
                "parent_id": None, "group": None, "retries": 0, "eta": None, "expires": None,
                "timelimit": [None, None], "argsrepr": "()", "kwargsrepr": "{}", "origin": "untrusted",
            } | (changed or {})  # fmt: skip
            producer.publish(body_of(queue), exchange="", routing_key=queue, headers=headers, **options)


def still_in_redis(redis_client: Any, task_ids: list[str]) -> list[str]:
    """The ids whose message is still waiting, taken but not acked, or set aside as malformed."""
    raw = [item for queue in QUEUES for key in queue_keys(queue) for item in redis_client.lrange(key, 0, -1)]
    raw += redis_client.hvals(UNACKED_KEY) + redis_client.lrange(BROKER_MALFORMED_KEY, 0, -1)
    return [task_id for task_id in task_ids if any(task_id.encode() in item for item in raw)]


def refused_counts(redis_client: Any, reason: str) -> dict[str, float]:
    """agent_messages_refused_total{reason=...} by queue."""
    counters = read(redis_client).counters.get(m.MESSAGES_REFUSED.name, {})
    return {queue: value for (queue, why), value in counters.items() if why == reason}


def settle(redis_client: Any, ids: dict[str, str], reason: str, before: dict[str, float]) -> dict[str, float]:
    """Wait until every message left Redis and was counted; the counts added, by queue."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        left = still_in_redis(redis_client, list(ids.values()))
        now = refused_counts(redis_client, reason)
        counted = {queue: now.get(queue, 0.0) - before.get(queue, 0.0) for queue in ids}
        if (not left and all(counted.values())) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == [], "messages still in Redis: the worker neither took nor dropped them"
    time.sleep(SETTLE_SECONDS)
    now = refused_counts(redis_client, reason)
    return {queue: now.get(queue, 0.0) - before.get(queue, 0.0) for queue in ids}


def test_a_pickle_message_on_every_queue_is_refused_unread_and_counted(
    fleet: str, redis_client: Any, tmp_path: Path
) -> None:
    from db import history

    # The payload is armed: loading it here, on purpose, creates its file.
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Touch(control)))
    assert control.exists()

    markers = tmp_path / "markers"
    markers.mkdir()
    ids = {queue: f"untrusted-{queue}-{uuid.uuid4()}" for queue in QUEUES}
    before = refused_counts(redis_client, CONTENT_TYPE)
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    publish_raw(ids, lambda queue: ((Touch(markers / f"pwned-{queue}"),), {}, embed), serializer="pickle")

    counted = settle(redis_client, ids, CONTENT_TYPE, before)
    assert sorted(path.name for path in markers.iterdir()) == [], "a worker unpickled a message"
    assert {queue: history.get(task_id) for queue, task_id in ids.items()} == dict.fromkeys(QUEUES)
    assert counted == dict.fromkeys(QUEUES, 1.0)
    assert sum(counted.values()) == len(QUEUES)


def test_a_body_that_does_not_decode_is_dropped_and_counted(fleet: str, redis_client: Any) -> None:
    from db import history

    ids = {queue: f"undecodable-{queue}-{uuid.uuid4()}" for queue in QUEUES}
    before = refused_counts(redis_client, UNDECODABLE)
    publish_raw(ids, lambda _: b"{not json", content_type="application/json", content_encoding="utf-8")

    counted = settle(redis_client, ids, UNDECODABLE, before)
    assert {queue: history.get(task_id) for queue, task_id in ids.items()} == dict.fromkeys(QUEUES)
    assert counted == dict.fromkeys(QUEUES, 1.0)


@pytest.mark.parametrize(
    ("changed", "body", "reason"),
    [
        ({"timelimit": 5}, None, BAD_HEADER),  # Celery's Request once raised: the worker exited
        ({"expires": ""}, None, BAD_HEADER),  # maybe_make_aware(None): AttributeError, exited
        ({"x-deep": json.loads("[" * 200 + "]" * 200)}, None, BAD_HEADER),  # too deep to pickle
        ({}, {"args": []}, BAD_BODY),  # not [args, kwargs, embed]: an unpack error, exited
    ],
    ids=["timelimit", "expires", "deep", "body"],
)
def test_a_task_message_of_the_wrong_shape_is_refused_on_every_queue(
    fleet: str, redis_client: Any, changed: dict[str, Any], body: Any, reason: str
) -> None:
    from db import history

    ids = {queue: f"shape-{queue}-{uuid.uuid4()}" for queue in QUEUES}
    before = refused_counts(redis_client, reason)
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    publish_raw(ids, lambda _: body if body is not None else ((), {}, embed), changed)

    counted = settle(redis_client, ids, reason, before)
    assert {queue: history.get(task_id) for queue, task_id in ids.items()} == dict.fromkeys(QUEUES)
    assert counted == dict.fromkeys(QUEUES, 1.0)


def test_refusal_labels_stay_bounded() -> None:
    consumer = SimpleNamespace(app=SimpleNamespace(amqp=SimpleNamespace(queues={"analysis": None})))
    assert queue_of(consumer, SimpleNamespace(delivery_info={"routing_key": "analysis"})) == "analysis"
    # The routing key is the publisher's: one a queue of the app does not have is no label value.
    assert queue_of(consumer, SimpleNamespace(delivery_info={"routing_key": "x" * 500})) == OTHER_QUEUE
    assert queue_of(consumer, SimpleNamespace(delivery_info=None)) == OTHER_QUEUE
    assert queue_of(consumer, SimpleNamespace(delivery_info=[1])) == OTHER_QUEUE  # once AttributeError
    assert queue_of(consumer, SimpleNamespace(delivery_info={"routing_key": ["x"]})) == OTHER_QUEUE
    assert reason_of(ContentDisallowed("pickle")) == CONTENT_TYPE
    assert reason_of(DecodeError("bad json")) == UNDECODABLE
    assert reason_of(InvalidTaskError("no args")) == INVALID
    assert reason_of(None) == NOT_A_TASK
