"""The router task on a real worker: routing, one task id per request, chains, clear rejections."""

from __future__ import annotations

import pytest

from agents.errors import Backpressure, InvalidRequest, NoLiveEngine, UnknownCapability
from agents.routing.rejections import rejection_counts

pytestmark = pytest.mark.servers


def test_routes_by_capability_and_keeps_one_task_id(fleet: str, redis_client) -> None:
    from tasks import route

    result = route.delay({"capability": "analysis", "payload": {"data": [1, 2, 3, 4, 100]}})
    value = result.get(timeout=20)
    assert value["count"] == 5 and value["max"] == 100.0
    # The engine task ran under the id the caller got from route.delay().
    flaky = route.delay({"capability": "flaky", "payload": {}}).get(timeout=20)
    assert flaky["ok"] is True


def test_engine_sees_the_routed_task_id(fleet: str, redis_client) -> None:
    from tasks import route

    result = route.delay({"capability": "flaky", "payload": {}})
    assert result.get(timeout=20)["task_id"] == result.id


def test_a_chain_goes_on_after_the_routed_engine(fleet: str, redis_client) -> None:
    from celery import chain

    from tasks import engine_task, route

    first = {"capability": "counting", "task_type": "first-step", "payload": {"a": 1}}
    result = chain(route.s(first), engine_task("counter").s()).apply_async()
    # The counter engine returns a request-shaped value, so it is its own next step.
    assert result.get(timeout=20) == {"task_type": "first-step", "payload": {"a": 1}}
    assert result.parent.get(timeout=20) == {"task_type": "first-step", "payload": {"a": 1}}


def test_monitoring_capability_goes_to_performance(fleet: str, redis_client) -> None:
    from tasks import route

    value = route.delay(
        {"capability": "monitoring", "payload": {"metrics": {"cpu": [50, 99]}, "thresholds": {"cpu": 90}}}
    ).get(timeout=20)
    assert value["breaches"] == [{"metric": "cpu", "p95": 99.0, "threshold": 90.0}]


def test_intelligence_explains_its_decision(fleet: str, redis_client) -> None:
    from tasks import route

    value = route.delay({"capability": "routing", "payload": {"capability": "optimization"}}).get(timeout=20)
    assert value["decision"]["engine"] == "optimization"
    assert 0 < value["decision"]["confidence"] <= 1


@pytest.mark.parametrize(
    ("request_body", "error", "message"),
    [
        ({"capability": "teleport"}, UnknownCapability, "no engine offers capability 'teleport'"),
        ({"payload": {}}, InvalidRequest, "capability: Field required"),
        ({"capability": "analysis", "priority": "urgent"}, InvalidRequest, "priority"),
        ([1, 2, 3], InvalidRequest, "expected a JSON object"),
        ({"capability": "processing"}, NoLiveEngine, "no live worker for engine.*my_engine"),
    ],
)
def test_rejections_are_distinct_errors_and_counted(
    fleet: str, redis_client, request_body, error, message
) -> None:
    from tasks import route

    with pytest.raises(error, match=message):
        route.delay(request_body).get(timeout=20)
    assert rejection_counts()[error.kind] == 1


def test_backpressure_when_every_queue_is_full(fleet: str, redis_client) -> None:
    from tasks import app, engine_task, route

    # Given the flaky engine's worker stops consuming (it stays alive and keeps its heartbeat)
    app.control.cancel_consumer("flaky", destination=[fleet], reply=True)
    waiting = [engine_task("flaky").delay({"payload": {}}) for _ in range(3)]  # queue_size is 3
    try:
        # When a request for its capability arrives, the router refuses it
        with pytest.raises(Backpressure, match=r"flaky 3/3"):
            route.delay({"capability": "flaky"}).get(timeout=20)
        assert rejection_counts()["backpressure"] == 1
    finally:
        app.control.add_consumer("flaky", destination=[fleet], reply=True)
    # Then nothing already accepted is lost once the worker consumes again
    assert all(r.get(timeout=20)["ok"] for r in waiting)


def test_breaker_opens_after_failures_and_recovers(fleet: str, redis_client) -> None:
    import time

    from agents.connections import breakers
    from agents.routing.decision import BreakerState
    from tasks import engine_task, route

    for _ in range(3):  # BREAKER_FAILURE_THRESHOLD=3 in the tests
        with pytest.raises(RuntimeError, match="asked to fail"):
            engine_task("flaky").delay({"payload": {"fail": True}}).get(timeout=20)
    # Celery stores the result before its task_failure signal runs the hooks: the third sample
    # lands just after the caller saw the failure.
    deadline = time.monotonic() + 5
    while breakers().health("flaky").breaker is not BreakerState.OPEN and time.monotonic() < deadline:
        time.sleep(0.05)
    assert breakers().health("flaky").breaker is BreakerState.OPEN
    with pytest.raises(NoLiveEngine, match="circuit breaker open for flaky"):
        route.delay({"capability": "flaky"}).get(timeout=20)
    time.sleep(2.2)  # BREAKER_RESET_TIMEOUT_SECONDS=2: half-open, trial traffic allowed
    assert route.delay({"capability": "flaky"}).get(timeout=20)["ok"] is True
    # The sample is recorded just after the result (the hooks run on Celery's task_success).
    deadline = time.monotonic() + 5
    while breakers().health("flaky").breaker is not BreakerState.CLOSED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert breakers().health("flaky").breaker is BreakerState.CLOSED
