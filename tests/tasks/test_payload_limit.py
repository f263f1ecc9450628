"""MAX_PAYLOAD_BYTES: a client refuses a larger task body before it reaches Redis (every publish
path serializes with the app's task serializer, tasks/publisher.py), and a worker refuses, unrun
and counted, one that a client with another limit (or none) sent anyway."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from kombu import Connection, Producer
from kombu.exceptions import EncodeError

from agents.errors import PayloadTooLarge
from agents.models import Decision, TaskRequest
from agents.names import engine_task_name, queue_keys
from agents.settings import get_settings
from tasks.app import app
from tasks.publisher import Outgoing, TaskPublisher, queue_for
from tasks.refusals import TOO_LARGE
from tests.agents.bridge.conftest import counts
from tests.tasks.test_untrusted_content import refused_counts, settle

pytestmark = pytest.mark.servers

NOWHERE = "payload-limit-nowhere"  # no worker consumes it: whatever reaches Redis stays there
LIMIT = get_settings().max_payload_bytes
SAID = rf"task body is \d+ bytes, over the limit of {LIMIT} bytes \(MAX_PAYLOAD_BYTES\)"


def waiting(redis_client: Any) -> int:
    return sum(redis_client.llen(key) for key in queue_keys(NOWHERE))


def test_delay_refuses_a_body_over_the_limit_before_it_reaches_redis(redis_client: Any) -> None:
    from tasks import route

    redis_client.delete(*queue_keys(NOWHERE))
    request = {"capability": "counting", "payload": {"pad": "x" * LIMIT}}
    with pytest.raises(EncodeError, match=SAID) as refused:
        route.apply_async((request,), queue=queue_for(app, NOWHERE))
    assert isinstance(refused.value.args[0], PayloadTooLarge)  # kombu wraps what its serializer raised
    assert waiting(redis_client) == 0
    # Just under the limit it goes: the limit is the body's size, not a guess
    under = {"capability": "counting", "payload": {"pad": "x" * (LIMIT - 500)}}
    route.apply_async((under,), queue=queue_for(app, NOWHERE))
    assert waiting(redis_client) == 1
    redis_client.delete(*queue_keys(NOWHERE))


def test_the_task_publisher_refuses_only_the_request_over_the_limit(redis_client: Any) -> None:
    redis_client.delete(*queue_keys(NOWHERE))
    decision = Decision(engine="counter", queue=NOWHERE, confidence=1.0, reason="test")
    items = [
        Outgoing(TaskRequest(task_id=str(uuid.uuid4()), capability="counting", payload=payload), decision)
        for payload in ({"n": 1}, {"pad": "é" * (LIMIT // 2)}, {"n": 2})  # 2 UTF-8 bytes a character
    ]
    refused = TaskPublisher(app).publish(items)
    assert [item.request.task_id for item, _ in refused] == [items[1].request.task_id]
    assert re.search(SAID, str(refused[0][1]))
    assert waiting(redis_client) == 2
    redis_client.delete(*queue_keys(NOWHERE))


def test_a_worker_refuses_a_body_over_the_limit_that_another_client_sent(
    fleet: str, redis_client: Any
) -> None:
    from db import history

    queue, task_id = "counter", f"too-large-{uuid.uuid4()}"
    before = refused_counts(redis_client, TOO_LARGE)
    headers = {"lang": "py", "task": engine_task_name(queue), "id": task_id, "root_id": task_id,
        "retries": 0, "timelimit": [None, None], "origin": "no-limit"}  # fmt: skip
    body: tuple[Any, ...] = ([{"payload": {"pad": "x" * LIMIT}}], {}, {"callbacks": None, "chain": None})
    with Connection(get_settings().redis_url) as connection:  # kombu's own json: no limit
        Producer(connection.default_channel).publish(body, exchange="", routing_key=queue, headers=headers)

    counted = settle(redis_client, {queue: task_id}, TOO_LARGE, before)
    assert counted == {queue: 1.0}
    assert task_id not in counts(redis_client), "it ran"
    assert history.get(task_id) is None
