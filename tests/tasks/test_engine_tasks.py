"""Engine tasks called directly with `.delay()` on a real worker: limits, bad payloads, metrics."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from agents.errors import InvalidRequest, UnknownCapability

pytestmark = pytest.mark.servers


def test_direct_call_fills_in_the_engine_capability(fleet: str, redis_client) -> None:
    from tasks import engine_task

    value = engine_task("optimization").delay({"payload": {"snapshot": {"cpu_percent": 97}}}).get(timeout=20)
    assert value["actions"][0]["action"] == "scale_up"


def test_direct_call_for_a_capability_the_engine_lacks(fleet: str, redis_client) -> None:
    from tasks import engine_task

    with pytest.raises(UnknownCapability, match="engine 'analysis' does not offer capability 'optimization'"):
        engine_task("analysis").delay({"capability": "optimization"}).get(timeout=20)


def test_bad_payload_names_the_field_and_does_not_open_the_breaker(fleet: str, redis_client) -> None:
    from agents.connections import breakers
    from tasks import engine_task

    for _ in range(4):
        with pytest.raises(InvalidRequest, match="engine 'analysis': data: Input should be a valid list"):
            engine_task("analysis").delay({"payload": {"data": "not a list"}}).get(timeout=20)
    assert breakers().health("analysis").consecutive_failures == 0


def test_engine_timeout_becomes_the_soft_time_limit(fleet: str, redis_client) -> None:
    from tasks import engine_task

    task = engine_task("flaky")
    assert (task.soft_time_limit, task.time_limit) == (2, 3)  # task_timeout_seconds=3, margin 1
    with pytest.raises(SoftTimeLimitExceeded):
        task.delay({"payload": {"sleep": 10}}).get(timeout=20)
    # The worker process survived and its event loop is still usable.
    assert task.delay({"payload": {}}).get(timeout=20)["ok"] is True


def test_request_timeout_caps_the_handler(fleet: str, redis_client) -> None:
    from tasks import engine_task

    with pytest.raises(Exception, match=r"request timeout of 0.2s exceeded"):
        engine_task("flaky").delay({"payload": {"sleep": 1}, "timeout": 0.2}).get(timeout=20)


def test_unknown_engine_name_lists_the_known_ones() -> None:
    from tasks import engine_task

    with pytest.raises(KeyError, match="no engine named 'nope'; known: analysis, batchy, counter, flaky"):
        engine_task("nope")
