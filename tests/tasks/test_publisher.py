"""A bridged task published twice (a crash between publish and marker) runs once."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from agents.models import Decision, TaskRequest
from tasks.app import app
from tasks.publisher import Outgoing, TaskPublisher
from tests.agents.bridge.conftest import counts, wait_until
from tests.conftest import wait_for_history

pytestmark = pytest.mark.servers


def test_second_publish_of_a_task_id_is_skipped_by_the_worker(fleet: str, redis_client: Any) -> None:
    task_id = str(uuid.uuid4())
    item = Outgoing(
        request=TaskRequest(task_id=task_id, capability="counting", payload={"n": 1}),
        decision=Decision(engine="counter", queue="counter", confidence=1.0, reason="test"),
    )
    publisher = TaskPublisher(app)
    publisher.publish([item])
    wait_for_history([task_id], {"success"})
    # The bridge crashed before confirming its marker, so the event came back and was published again.
    publisher.publish([item])
    time.sleep(2.0)  # the fleet worker has long taken the second message
    wait_until(lambda: counts(redis_client).get(task_id) == 1, what="first run counted")
    assert counts(redis_client) == {task_id: 1}
    assert redis_client.llen("counter") == 0
