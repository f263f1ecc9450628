"""An idle worker of one queue waits in Redis (BLMOVE on its default-priority list) instead of
polling, and still takes every message: of the default priority at once, of another within the
wait's timeout (tasks/transport/channel.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from agents.models import Priority
from tests.conftest import REDIS_PORT

pytestmark = pytest.mark.servers

URL = f"redis://127.0.0.1:{REDIS_PORT}/9"  # the `raw` fixture's own database


def blocked_waits(client: redis.Redis) -> list[dict[str, Any]]:
    """Clients blocked in BLMOVE right now."""
    return [c for c in client.client_list() if c.get("cmd") == "blmove" and "b" in c.get("flags", "")]


def test_the_wait_moves_nothing_and_keeps_the_order(raw: redis.Redis) -> None:
    # What the channel relies on: a move from a list's tail to its own tail is no move at all.
    raw.lpush("wait-test", "first", "second", "third")  # LPUSH publishes, the tail is the oldest
    assert raw.blmove("wait-test", "wait-test", 1, "RIGHT", "RIGHT") == b"first"
    assert raw.lrange("wait-test", 0, -1) == [b"third", b"second", b"first"]
    assert raw.blmove("empty-test", "empty-test", 1, "RIGHT", "RIGHT") is None  # timeout: nil


def test_an_idle_worker_waits_and_takes_messages_of_every_priority(
    demo_workers: tuple[str, str], redis_client: redis.Redis
) -> None:
    from tasks import route

    deadline = time.monotonic() + 30
    while len(blocked_waits(redis_client)) < len(demo_workers):  # demo_blue, demo_green: one queue each
        assert time.monotonic() < deadline, redis_client.client_list()
        time.sleep(0.2)

    for priority in Priority:  # NORMAL lands on the list they wait on; the others do not
        sent = [
            route.delay({"capability": "demo", "payload": {}, "priority": int(priority)}) for _ in range(5)
        ]
        ran = {result.get(timeout=30)["engine"] for result in sent}  # a stranded one times out
        assert ran and ran <= set(demo_workers), (priority, ran)
