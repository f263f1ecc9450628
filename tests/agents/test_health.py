"""The health decisions of agents/health.py: from what a worker observed to status code and JSON.
No servers; tasks/health_server.py and its tests observe real workers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agents import health
from agents.health import Observation

HEALTHY = Observation(
    loop_age=0.5,
    consumer="running",
    connected=True,
    queues=("analysis", "maintenance"),
    consuming=frozenset({"analysis", "maintenance"}),
    ping_age=1.0,
)


def failing(answer: tuple[int, dict[str, Any]] | None) -> list[str]:
    assert answer is not None
    return [name for name, check in answer[1]["checks"].items() if check["status"] == "fail"]


def test_a_healthy_worker_is_live_and_ready() -> None:
    for path in (health.LIVE_PATH, health.READY_PATH, health.HEALTH_PATH):
        answer = health.answer(path, HEALTHY)
        assert answer is not None
        assert answer[0] == 200
        assert answer[1]["status"] == "ok"
    _, body = health.answer(health.HEALTH_PATH, HEALTHY) or (0, {})
    assert body["live"] == body["ready"] == "ok"
    assert set(body["checks"]) == {"event_loop", "broker", "broker_ping", "consuming"}
    assert health.answer("/healthz", HEALTHY) is None


def test_a_hung_event_loop_fails_liveness() -> None:
    hung = replace(HEALTHY, loop_age=health.LOOP_STALE_SECONDS + 1)
    detail = "did not turn for 21s (hung main thread)"
    assert health.answer(health.LIVE_PATH, hung) == (
        503,
        {"status": "fail", "checks": {"event_loop": {"status": "fail", "detail": detail}}},
    )
    assert failing(health.answer(health.READY_PATH, hung)) == ["event_loop"]
    _, body = health.answer(health.HEALTH_PATH, hung) or (0, {})
    assert (body["status"], body["live"], body["ready"]) == ("fail", "fail", "fail")


def test_reconnecting_to_the_broker_is_live_but_not_ready() -> None:
    # Celery leaves its event loop while it reconnects; restarting the worker would not help.
    reconnecting = replace(
        HEALTHY, loop_age=health.LOOP_STALE_SECONDS * 3, consumer="connecting", connected=False,
        consuming=frozenset(), ping_error="ConnectionError: Connection refused",
    )  # fmt: skip
    live = health.answer(health.LIVE_PATH, reconnecting)
    assert live is not None
    assert live[0] == 200
    ready = health.answer(health.READY_PATH, reconnecting)
    assert ready is not None
    assert ready[0] == 503
    assert failing(ready) == ["broker", "broker_ping", "consuming"]
    assert ready[1]["checks"]["broker"]["detail"] == "connection lost; reconnecting"
    assert ready[1]["checks"]["broker_ping"]["detail"] == "PING failed: ConnectionError: Connection refused"


def test_a_stale_pong_or_a_missing_queue_is_not_ready() -> None:
    assert failing(health.answer(health.READY_PATH, replace(HEALTHY, ping_age=None))) == ["broker_ping"]
    stale = replace(HEALTHY, ping_age=health.PING_STALE_SECONDS + 1)
    assert failing(health.answer(health.READY_PATH, stale)) == ["broker_ping"]
    assert failing(health.answer(health.READY_PATH, replace(HEALTHY, pinged=False, ping_age=None))) == []
    partial = replace(HEALTHY, consuming=frozenset({"maintenance"}))
    ready = health.answer(health.READY_PATH, partial)
    assert failing(ready) == ["consuming"]
    assert ready is not None
    assert ready[1]["checks"]["consuming"]["detail"] == "not consuming analysis"
    # agent_worker_ready is per engine: the queue it consumes still counts.
    assert not health.queue_ready(partial, "analysis")
    assert health.queue_ready(partial, "maintenance")
    assert not health.queue_ready(replace(HEALTHY, consumer="stopping"), "analysis")
    assert not health.queue_ready(stale, "maintenance")
