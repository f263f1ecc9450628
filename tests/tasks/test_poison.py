"""Poison stays alone: a request that breaks its worker fails by itself, with its reason, after a
bounded number of deliveries (TASK_MAX_DELIVERIES=3 in the tests); its neighbours succeed."""

from __future__ import annotations

from typing import Any

import pytest

from agents.errors import InvalidRequest, PoisonMessage, UnknownCapability
from tests.conftest import wait_for_history
from tests.hooks import probed

pytestmark = pytest.mark.servers


def send_together(task: Any, requests: list[Any]) -> list[Any]:
    """One pipeline of messages, so the worker takes them together (one batch)."""
    from tasks import app

    with app.producer_or_acquire() as producer, producer.batch(max_size=1000):
        return [task.apply_async((r,), producer=producer) for r in requests]


def outcomes(task_id: str) -> list[str]:
    return [entry for entry in probed(task_id) if entry.startswith("outcome:")]


def test_a_message_that_kills_its_batch_fails_alone(batch_worker: None, redis_client: Any) -> None:
    from tasks import engine_task

    payloads = [{"n": 0}, {"crash": True}, {"n": 1}, {"n": 2}]
    results = send_together(engine_task("batchy"), [{"payload": p} for p in payloads])
    poison = results[1]
    good = [r for r in results if r is not poison]
    # The good requests went back to the queue with the poison once, then each ran alone.
    for result in good:
        assert result.get(timeout=60)["ok"] is True
    with pytest.raises(PoisonMessage, match="delivered 4 times"):
        poison.get(timeout=60)
    rows = wait_for_history([r.id for r in results])
    assert {rows[r.id]["status"] for r in good} == {"success"}
    assert rows[poison.id]["status"] == "failed"
    assert rows[poison.id]["error"].startswith(
        "PoisonMessage: message delivered 4 times (TASK_MAX_DELIVERIES=3)"
    )
    # Each ended exactly once, as the pipeline's hooks saw it.
    assert all(outcomes(r.id) == ["outcome:success:batch"] for r in good)
    assert outcomes(poison.id) == ["outcome:failed:batch"]
    # The worker is still serving.
    (after,) = send_together(engine_task("batchy"), [{"payload": {}}])
    assert after.get(timeout=30)["ok"] is True


def test_a_message_that_kills_its_process_fails_on_a_per_request_engine(
    fleet: str, redis_client: Any
) -> None:
    from billiard.exceptions import TimeLimitExceeded, WorkerLostError

    from tasks import engine_task

    # Celery's own task_retry_on_worker_lost: retried after a pause, within max_retries (3). Now
    # and then Celery hands a retry to the pool while it replaces the dead process and the retry
    # waits there until its hard time limit (celery 5.7, billiard 4.3.2): it still fails alone.
    poison = engine_task("flaky").delay({"payload": {"crash": True}})
    with pytest.raises((WorkerLostError, TimeLimitExceeded)):
        poison.get(timeout=60)
    row = wait_for_history([poison.id])[poison.id]
    assert row["status"] == "failed"
    assert row["error"].split(":")[0] in ("WorkerLostError", "TimeLimitExceeded")
    seen = outcomes(poison.id)
    assert "outcome:failed:tracer" in seen and len(seen) <= 2 * (3 + 1)
    assert all(entry in ("outcome:retrying:tracer", "outcome:failed:tracer") for entry in seen)
    assert engine_task("flaky").delay({"payload": {}}).get(timeout=30)["ok"] is True


def test_bad_requests_in_a_routed_batch_fail_alone(fleet: str, redis_client: Any) -> None:
    from tasks import route

    requests: list[Any] = [
        {"capability": "analysis", "payload": {"data": [1, 2]}},
        {"capability": "teleport"},
        [1, 2, 3],
        {"capability": "analysis", "payload": {"data": [3, 4]}},
    ]
    first, unknown, invalid, last = send_together(route, requests)
    assert first.get(timeout=30)["count"] == 2 and last.get(timeout=30)["count"] == 2
    with pytest.raises(UnknownCapability):
        unknown.get(timeout=30)
    with pytest.raises(InvalidRequest):
        invalid.get(timeout=30)
    rows = wait_for_history([r.id for r in (first, unknown, invalid, last)])
    assert [rows[r.id]["status"] for r in (first, unknown, invalid, last)] == [
        "success", "rejected", "rejected", "success",
    ]  # fmt: skip


def test_a_message_that_cannot_be_built_fails_alone(fleet: str, redis_client: Any) -> None:
    from agents.models import Decision, TaskRequest
    from tasks import app
    from tasks.publisher import Outgoing, TaskPublisher

    decision = Decision(engine="counter", queue="counter", confidence=1.0, reason="test")
    good = Outgoing(TaskRequest(capability="counting"), decision)
    bad = Outgoing(TaskRequest(capability="counting"), decision, options={"countdown": "soon"})
    refused = TaskPublisher(app).publish([good, bad])
    assert [item for item, _ in refused] == [bad]
    assert wait_for_history([good.request.task_id])[good.request.task_id]["status"] == "success"
