"""Beat maintenance jobs run as real tasks on the maintenance queue of the real worker."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import text

from agents.lifecycle import merge
from db import history
from db.session import get_engine
from tests.conftest import wait_for_history

pytestmark = pytest.mark.servers


def stuck_row(engine: str, capability: str, minutes_ago: float, payload: dict | None = None) -> str:
    tid = f"stuck-{uuid.uuid4()}"
    started = time.time() - minutes_ago * 60
    event = {
        "task_id": tid,
        "status": "processing",
        "at": started,
        "started_at": started,
        "engine": engine,
        "capability": capability,
        "task_name": f"agents.engine.{engine}",
        "payload": payload,
    }
    history.upsert(merge([event]).values())
    return tid


def test_reaper_fails_the_lost_and_requeues_the_idempotent(fleet: str, redis_client) -> None:
    from tasks.maintenance import reap_stuck

    lost = stuck_row("analysis", "analysis", minutes_ago=10)  # hard limit 120 s + 60 s grace
    fresh = stuck_row("analysis", "analysis", minutes_ago=1)
    retry = stuck_row("flaky", "flaky", minutes_ago=10, payload={"sleep": 0})  # flaky is idempotent
    counts = reap_stuck.delay().get(timeout=30)
    assert counts["fail"] >= 1 and counts["requeue"] >= 1
    assert (history.get(fresh) or {})["status"] == "processing"
    failed = history.get(lost) or {}
    assert failed["status"] == "failed" and failed["error"].startswith("stuck: processing since")
    # The re-queued request runs again under the same task id and ends in success.
    rows = wait_for_history([retry], {"success"})
    assert rows[retry]["retries"] == 1 and rows[retry]["result"] == {"ok": True, "task_id": retry}


def test_retention_deletes_old_history_in_batches(fleet: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from db.maintenance import delete_older_than

    old = [f"old-{uuid.uuid4()}" for _ in range(7)]
    keep = stuck_row("analysis", "analysis", minutes_ago=0)
    history.upsert(merge({"task_id": t, "status": "success", "at": time.time()} for t in old).values())
    with get_engine().begin() as connection:
        connection.execute(
            text("UPDATE task_results SET created_at = NOW() - INTERVAL '40 days' WHERE task_id = ANY(:ids)"),
            {"ids": old},
        )
    deleted = delete_older_than(days=30, batch_size=3)
    assert deleted["task_results"] >= 7
    assert all(history.get(t) is None for t in old)
    assert history.get(keep) is not None


def test_health_report_is_stored_and_returned(fleet: str, nats_server, redis_client) -> None:
    from tasks.maintenance import health_report

    report = health_report.delay().get(timeout=60)
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) == {"workers", "database", "nats", "redis", "tasks", "configuration"}
    assert checks["database"]["ok"] and checks["nats"]["ok"] and checks["redis"]["ok"]
    assert checks["configuration"]["ok"]  # the default thresholds and rules
    # my_engine has no worker in the fleet, so the report is honest about it.
    assert not checks["workers"]["ok"] and "my_engine" in checks["workers"]["detail"]
    with get_engine().connect() as connection:
        stored = connection.execute(
            text("SELECT healthy FROM health_reports WHERE id = :id"), {"id": report["id"]}
        )
        assert stored.scalar() is False


def test_analyze_and_registry_cleanup_run(fleet: str, redis_client) -> None:
    from agents.registry import EngineCard, Registry
    from tasks.maintenance import analyze, prune_registry

    assert "task_results" in analyze.delay().get(timeout=30)
    Registry(redis_client).announce(
        "gone@host",
        [EngineCard(engine="gone", capabilities=["x"], queue_size=1, concurrency=1)],
        ttl_seconds=0.1,
    )
    time.sleep(0.3)
    assert prune_registry.delay().get(timeout=30) >= 1


def test_beat_schedule_holds_every_job_with_its_period() -> None:
    import celeryconfig
    from agents.names import MAINTENANCE_TASKS

    assert {entry["task"] for entry in celeryconfig.beat_schedule.values()} == set(MAINTENANCE_TASKS)
    assert all(float(str(entry["schedule"])) > 0 for entry in celeryconfig.beat_schedule.values())


def test_maintenance_jobs_are_served_before_the_load_they_watch() -> None:
    from agents.models import Priority
    from agents.names import ANALYSIS_TASKS, MAINTENANCE_TASKS, ROUTE_TASK
    from tasks import app

    app.finalize()
    assert {app.tasks[name].priority for name in (*MAINTENANCE_TASKS, *ANALYSIS_TASKS)} == {
        Priority.CRITICAL.broker_priority
    }
    assert app.tasks[ROUTE_TASK].priority == Priority.NORMAL.broker_priority
