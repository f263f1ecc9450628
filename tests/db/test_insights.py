"""The analysis engine's SQL against a real PostgreSQL: bounded samples, the cooldown, the listing."""

from __future__ import annotations

import time
import uuid

import pytest

from agents.lifecycle import merge
from agents.monitoring.insights import Insight
from db import history
from db.insights import engines_seen, list_insights, read_samples, store_insight

pytestmark = pytest.mark.servers


def finished(engine: str, created: float, runtime: float, status: str = "success") -> str:
    tid = f"sample-{uuid.uuid4()}"
    event = {
        "task_id": tid, "status": status, "at": created,  # the first event's time is the creation
        "started_at": created, "finished_at": created + runtime, "runtime": runtime, "engine": engine,
        "capability": "cap", "task_name": f"agents.engine.{engine}",
    }  # fmt: skip
    history.upsert(merge([event]).values())
    return tid


def test_samples_are_bounded_newest_first_and_final_only(postgres_server) -> None:
    engine, now = f"sql-{uuid.uuid4().hex[:8]}", time.time()
    for i in range(6):
        finished(engine, now - 60 + i, 0.01 * (i + 1))
    finished(engine, now - 30, 0.5, "failed")
    running = {"task_id": f"run-{uuid.uuid4()}", "status": "processing", "at": now - 20, "engine": engine}
    history.upsert(merge([running]).values())
    finished(engine, now - 500, 0.2)  # outside the window

    samples = read_samples(engine, now - 100, now, limit=100)
    assert [(s.status, round(s.runtime or 0, 2)) for s in samples] == [
        ("failed", 0.5), *[("success", round(0.01 * i, 2)) for i in range(6, 0, -1)],
    ]  # fmt: skip
    assert samples[0].capability == "cap" and samples[0].created_at == pytest.approx(now - 30, abs=1e-3)
    assert samples[0].latency == pytest.approx(0.5, abs=1e-3)
    assert len(read_samples(engine, now - 100, now, limit=3)) == 3
    assert engine in engines_seen(now - 100, now) and engine not in engines_seen(now - 10, now)


def test_the_same_insight_waits_out_its_cooldown_unless_it_gets_worse(postgres_server) -> None:
    subject = f"cool-{uuid.uuid4().hex[:8]}"
    warning = Insight("latency_regression", subject, "warning", f"{subject}: slower", {"z": 5.0})
    first = store_insight(warning, cooldown_seconds=300, engine=subject)
    assert first is not None and (first["subject"], first["severity"], first["data"]) == (
        subject,
        "warning",
        {"z": 5.0},
    )
    assert store_insight(warning, cooldown_seconds=300) is None  # the same again: dropped
    info = Insight("latency_regression", subject, "info", "milder", {})
    assert store_insight(info, cooldown_seconds=300) is None  # milder: dropped too
    critical = Insight("latency_regression", subject, "critical", f"{subject}: much slower", {})
    assert store_insight(critical, cooldown_seconds=300) is not None  # worse: stored
    other_kind = Insight("failure_spike", subject, "warning", "failing", {})
    assert store_insight(other_kind, cooldown_seconds=300) is not None
    assert store_insight(warning, cooldown_seconds=0) is not None  # no cooldown: every time

    mine = [r for r in list_insights(limit=100) if r["subject"] == subject]
    assert [(r["kind"], r["severity"]) for r in mine] == [
        ("latency_regression", "warning"), ("failure_spike", "warning"), ("latency_regression", "critical"),
        ("latency_regression", "warning"),
    ]  # fmt: skip
    spikes = list_insights(limit=100, kind="failure_spike")
    assert {r["kind"] for r in spikes} == {"failure_spike"} and any(r["subject"] == subject for r in spikes)
    assert len(list_insights(limit=1)) == 1
