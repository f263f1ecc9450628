"""Batch tasks on a real worker: the `batchy` test engine (batch_size 20) started as `agents worker`
starts it, with its bulk prefetch, and the router's batches."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from tests.conftest import wait_for_history
from tests.engines import BATCH_RUNS_KEY

pytestmark = pytest.mark.servers
OUTCOMES = ("task-succeeded", "task-failed")


def send_together(payloads: list[dict[str, Any]]) -> list[Any]:
    """One pipeline of engine messages, so the worker finds them together (one batch)."""
    from tasks import app, engine_task

    task = engine_task("batchy")
    with app.producer_or_acquire() as producer, producer.batch(max_size=1000):
        return [task.apply_async(({"payload": p},), producer=producer) for p in payloads]


def runs(redis_client: Any, task_id: str) -> int:
    return int(redis_client.hget(BATCH_RUNS_KEY, task_id) or 0)


# First in the module: the worker is fresh, nothing in it has declared the event exchange yet.
def test_task_events_show_each_batched_request_finish(batch_worker: None, redis_client: Any) -> None:
    """What Flower shows: an outcome event per request, under the request's own id."""
    from tasks import app

    events: list[dict[str, Any]] = []
    with app.connection_for_read() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": events.append})
        listener = threading.Thread(target=receiver.capture, kwargs={"wakeup": False}, daemon=True)
        listener.start()
        time.sleep(1)  # the receiver's queue is bound before anything is sent
        ok, bad = send_together([{}, {"fail": True}])
        assert ok.get(timeout=30)["ok"] is True
        with pytest.raises(RuntimeError):
            bad.get(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            outcomes = {e["uuid"]: e["type"] for e in events if e["type"] in OUTCOMES}
            if {ok.id, bad.id} <= set(outcomes):
                break
            time.sleep(0.2)
        receiver.should_stop = True
    assert outcomes.get(ok.id) == "task-succeeded"
    assert outcomes.get(bad.id) == "task-failed"
    finished = [e for e in events if e["type"] in OUTCOMES and e["uuid"] in (ok.id, bad.id)]
    assert {e["hostname"].split("@")[0] for e in finished} == {"batchy"}


def test_requests_run_in_batches_each_once_with_its_own_result(batch_worker: None, redis_client: Any) -> None:
    results = send_together([{"n": n} for n in range(100)])
    for result in results:
        assert result.get(timeout=30) == {"ok": True, "task_id": result.id}
    rows = wait_for_history([r.id for r in results])
    assert {row["status"] for row in rows.values()} == {"success"}
    assert all(runs(redis_client, r.id) == 1 for r in results)
    # Every item of a batch records the batch's start time: fewer distinct times than requests.
    batches = {row["started_at"] for row in rows.values()}
    assert len(batches) <= 100 // 5, f"{len(batches)} batches for 100 requests"


def test_each_request_of_a_batch_gets_its_own_outcome(batch_worker: None, redis_client: Any) -> None:
    ok, failing, flaky, exhausted = send_together(
        [{}, {"fail": True}, {"transient_failures": 1}, {"transient_failures": 5}]
    )
    assert ok.get(timeout=30)["ok"] is True
    with pytest.raises(RuntimeError, match="asked to fail"):
        failing.get(timeout=30)
    assert flaky.get(timeout=30)["ok"] is True
    with pytest.raises(Exception, match="asked to fail transiently"):
        exhausted.get(timeout=60)
    rows = wait_for_history([ok.id, failing.id, flaky.id, exhausted.id], timeout=60)
    assert rows[ok.id]["status"] == "success"
    assert rows[failing.id]["status"] == "failed" and "RuntimeError" in rows[failing.id]["error"]
    assert rows[flaky.id]["status"] == "success" and rows[flaky.id]["retries"] == 1
    assert rows[exhausted.id]["status"] == "failed" and rows[exhausted.id]["retries"] == 2
    assert runs(redis_client, flaky.id) == 2 and runs(redis_client, exhausted.id) == 3


def test_soft_time_limit_fails_the_slow_request_and_requeues_the_rest(
    batch_worker: None, redis_client: Any
) -> None:
    slow, *quick = send_together([{"sleep": 30}] + [{"n": n} for n in range(5)])
    with pytest.raises(SoftTimeLimitExceeded):
        slow.get(timeout=30)
    for result in quick:
        assert result.get(timeout=30)["ok"] is True
        assert runs(redis_client, result.id) == 1
    assert "SoftTimeLimitExceeded" in wait_for_history([slow.id])[slow.id]["error"]


def test_hard_time_limit_fails_the_whole_batch_and_the_worker_goes_on(
    batch_worker: None, redis_client: Any
) -> None:
    stubborn, *others = send_together([{"ignore_soft_limit": True}] + [{"n": n} for n in range(3)])
    with pytest.raises(TimeLimitExceeded):
        stubborn.get(timeout=30)
    rows = wait_for_history([stubborn.id] + [r.id for r in others])
    assert {row["status"] for row in rows.values()} == {"failed"}
    assert all("hard time limit" in row["error"] for row in rows.values())
    (after,) = send_together([{}])
    assert after.get(timeout=30)["ok"] is True


def test_a_revoked_request_never_runs(batch_worker: None, redis_client: Any) -> None:
    from tasks import app, engine_task

    task_id = f"revoked-{time.time_ns()}"
    app.control.revoke(task_id)
    time.sleep(1)  # the revoke is a broadcast; let the worker take it first
    result = engine_task("batchy").apply_async(({"payload": {}},), task_id=task_id)
    (marker,) = send_together([{}])
    assert marker.get(timeout=30)["ok"] is True
    assert wait_for_history([task_id])[task_id]["status"] == "revoked"
    assert result.state == "REVOKED"
    assert runs(redis_client, task_id) == 0


def test_a_chain_goes_on_after_a_batch_engine(batch_worker: None, redis_client: Any) -> None:
    from celery import chain

    from tasks import engine_task

    first = {"payload": {"then": {"task_type": "second-step", "payload": {"n": 1}}}}
    result = chain(engine_task("batchy").s(first), engine_task("counter").s()).apply_async()
    # The counter engine gets the batch engine's result as its request.
    assert result.get(timeout=30) == {"task_type": "second-step", "payload": {"n": 1}}
    assert runs(redis_client, result.parent.id) == 1


def test_per_call_time_limits_are_refused_at_publish(batch_worker: None, redis_client: Any) -> None:
    from agents.errors import UnsupportedOption
    from tasks import engine_task, route

    # A batch engine (and the router, a batch task too) cannot give one request its own limit.
    for task in (engine_task("batchy"), route):
        for option in ("time_limit", "soft_time_limit"):
            with pytest.raises(
                UnsupportedOption, match=f"runs requests in batches: {option} is not supported"
            ):
                task.apply_async(({"payload": {}},), **{option: 5})


def test_ignore_result_is_honoured(batch_worker: None, redis_client: Any) -> None:
    from celery.result import AsyncResult

    from tasks import engine_task

    ignored = engine_task("batchy").apply_async(({"payload": {}},), ignore_result=True)
    (marker,) = send_together([{}])  # the same worker, after the ignored one
    assert marker.get(timeout=30)["ok"] is True
    assert wait_for_history([ignored.id])[ignored.id]["status"] == "success"
    assert AsyncResult(ignored.id).state == "PENDING"  # ran, recorded, no result stored


def test_rate_limit_set_with_celery_control_spreads_a_batch(batch_worker: None, redis_client: Any) -> None:
    from tasks import app

    app.control.rate_limit("agents.engine.batchy", "10/s", reply=True)
    try:
        results = send_together([{"n": n} for n in range(20)])
        for result in results:
            assert result.get(timeout=30)["ok"] is True
    finally:
        app.control.rate_limit("agents.engine.batchy", "0", reply=True)
    rows = wait_for_history([r.id for r in results])
    started = sorted(row["started_at"] for row in rows.values())
    # 20 requests at 10/s: without the limit they all start in the same batch, at one instant.
    assert (started[-1] - started[0]).total_seconds() >= 1.0
