"""Every lifecycle path leaves one task_results row with its final status and reason."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for_history

pytestmark = pytest.mark.servers


def test_routed_request_keeps_one_row_with_engine_and_confidence(fleet: str, redis_client) -> None:
    from tasks import route

    result = route.delay({"capability": "analysis", "task_type": "series", "payload": {"data": [1, 2]}})
    result.get(timeout=20)
    row = wait_for_history([result.id])[result.id]
    assert row["status"] == "success"
    assert (row["engine"], row["capability"], row["task_type"]) == ("analysis", "analysis", "series")
    assert row["task_name"] == "agents.engine.analysis"
    assert 0 < row["confidence"] <= 1 and "analysis" in row["reason"]
    assert row["result"]["count"] == 2 and row["payload"] == {"data": [1, 2]}
    assert row["worker"] == fleet and row["runtime"] >= 0
    assert row["started_at"] <= row["finished_at"]


def test_direct_delay_failure_records_the_reason(fleet: str, redis_client) -> None:
    from tasks import engine_task

    result = engine_task("flaky").delay({"payload": {"fail": True}})
    with pytest.raises(RuntimeError):
        result.get(timeout=20)
    row = wait_for_history([result.id])[result.id]
    assert (row["status"], row["error"]) == ("failed", "RuntimeError: asked to fail")


def test_retry_then_success_counts_retries(fleet: str, redis_client) -> None:
    from tasks import engine_task

    result = engine_task("flaky").delay({"payload": {"transient_failures": 1}})
    assert result.get(timeout=30)["ok"] is True
    row = wait_for_history([result.id])[result.id]
    assert (row["status"], row["retries"]) == ("success", 1)
    assert "asked to fail transiently" in row["error"]


def test_rejected_by_the_router(fleet: str, redis_client) -> None:
    from agents.errors import UnknownCapability
    from tasks import route

    result = route.delay({"capability": "teleport", "task_type": "jump"})
    with pytest.raises(UnknownCapability):
        result.get(timeout=20)
    row = wait_for_history([result.id])[result.id]
    assert row["status"] == "rejected"
    assert row["error"] == "UnknownCapability: no engine offers capability 'teleport'"
    assert row["task_type"] == "jump"


def test_soft_and_hard_time_limits_are_failures_with_reasons(fleet: str, redis_client) -> None:
    from tasks import engine_task

    soft = engine_task("flaky").delay({"payload": {"sleep": 10}})
    hard = engine_task("flaky").delay({"payload": {"sleep": 10, "ignore_soft_limit": True}})
    rows = wait_for_history([soft.id, hard.id], timeout=40)
    assert rows[soft.id]["status"] == "failed"
    assert rows[soft.id]["error"].startswith("SoftTimeLimitExceeded")
    assert rows[hard.id]["status"] == "failed"
    assert rows[hard.id]["error"] == "TimeLimitExceeded: hard time limit (3s) exceeded"


def test_revoked_before_it_ran(fleet: str, redis_client) -> None:
    from tasks import app, engine_task

    app.control.cancel_consumer("flaky", destination=[fleet], reply=True)
    try:
        result = engine_task("flaky").delay({"payload": {}})
        result.revoke()
        wait_for_history([result.id], {"queued"})
    finally:
        app.control.add_consumer("flaky", destination=[fleet], reply=True)
    row = wait_for_history([result.id])[result.id]
    assert (row["status"], row["error"]) == ("revoked", "revoked: revoked before it ran")
