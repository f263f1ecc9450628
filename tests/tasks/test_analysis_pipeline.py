"""The analysis pipeline end to end: a real latency regression on the flaky engine becomes one
insight, stored, listed by `agents insights` and published on NATS; a second run stays quiet."""

from __future__ import annotations

import time
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete

from tests.conftest import wait_for_history
from tests.nats_inbox import NatsInbox

pytestmark = pytest.mark.servers


def run_flaky(count: int, sleep: float) -> None:
    from tasks import engine_task

    results = [engine_task("flaky").delay({"payload": {"sleep": sleep}}) for _ in range(count)]
    for result in results:
        result.get(timeout=30)
    wait_for_history([r.id for r in results])


def test_an_injected_latency_regression_becomes_one_insight_everywhere(
    fleet: str, nats_server: Any, redis_client: Any
) -> None:
    from agents.cli_history import insights
    from agents.settings import get_settings
    from db.insights import list_insights
    from db.models import Insight
    from db.session import get_engine
    from tasks.analysis_pipeline import start_analysis

    with get_engine().begin() as connection:  # an earlier run's insight would hold the cooldown
        connection.execute(delete(Insight).where(Insight.subject == "flaky"))
    inbox = NatsInbox(get_settings().nats_url, "agents.insights")
    # Given 30 fast requests, then 10 that each take 300 ms (the regression) ...
    started = time.time()
    run_flaky(30, 0)
    time.sleep(0.3)
    slow_from = time.time()
    run_flaky(10, 0.3)
    # ... when the pipeline looks at the slow requests' span against the fast ones before it,
    recent, baseline = time.time() - slow_from + 0.1, slow_from - started
    result = start_analysis("test: injected regression", window_seconds=recent, baseline_seconds=baseline)
    report = result.get(timeout=30)

    # then one critical latency_regression names the engine, with its figures ...
    assert "flaky" in report["engines"] and report["reason"] == "test: injected regression"
    (found,) = [i for i in report["insights"] if i["kind"] == "latency_regression"]
    assert (found["subject"], found["engine"], found["severity"]) == ("flaky", "flaky", "critical")
    assert (
        found["summary"].startswith("flaky: median runtime 3") and "ms before (robust z" in found["summary"]
    )
    evidence = found["evidence"]
    assert (evidence["recent_count"], evidence["baseline_count"]) == (10, 30)
    assert evidence["recent_median"] >= 0.3 > 0.05 > evidence["baseline_median"]
    assert evidence["trigger"] == "test: injected regression"
    recent_rows = [a for a in report["aggregates"] if a["engine"] == "flaky" and a["window"] == "recent"]
    assert [(a["count"], a["failures"]) for a in recent_rows] == [(10, 0)]
    # ... stored, listed by `agents insights`, and published on NATS `agents.insights`.
    assert list_insights(limit=1, kind="latency_regression")[0]["id"] == found["id"]
    listed = CliRunner().invoke(insights, ["--kind", "latency_regression", "--limit", "5"])
    assert listed.exit_code == 0, listed.output
    assert "latency_regression" in listed.output and "flaky: median runtime" in listed.output
    published = [m for m in inbox.wait_for(1) if m["id"] == found["id"]]
    assert [(m["_subject"], m["kind"], m["subject"]) for m in published] == [
        ("agents.insights", "latency_regression", "flaky")
    ]

    # Run again within the cooldown: the same finding is not stored or published twice.
    again = start_analysis("test: again", subject="flaky", window_seconds=recent, baseline_seconds=baseline)
    assert again.get(timeout=30)["insights"] == []
    assert [r["id"] for r in list_insights(limit=100) if r["subject"] == "flaky"] == [found["id"]]
    time.sleep(0.3)
    inbox.stop.set()
    assert [m["id"] for m in inbox.messages] == [found["id"]]


def test_beat_starts_the_pipeline_on_a_worker(fleet: str) -> None:
    import celeryconfig
    from agents.names import INSIGHTS_TASK
    from agents.settings import get_settings
    from tasks import app

    (entry,) = [e for e in celeryconfig.beat_schedule.values() if e["task"] == INSIGHTS_TASK]
    assert entry["schedule"] == get_settings().analysis_interval_seconds == 300
    pipeline_id = app.send_task(INSIGHTS_TASK).get(timeout=30)
    report = app.AsyncResult(pipeline_id).get(timeout=30)
    assert report["reason"] == "schedule" and set(report) == {"reason", "engines", "aggregates", "insights"}


def test_the_cli_refuses_an_unknown_kind() -> None:
    from agents.cli_history import insights

    refused = CliRunner().invoke(insights, ["--kind", "bogus"])
    assert refused.exit_code == 2 and "'bogus' is not one of" in refused.output


def test_a_window_must_be_positive() -> None:
    from tasks.analysis_pipeline import start_analysis

    with pytest.raises(ValueError, match="windows must be positive seconds, got window 0 and baseline 3600"):
        start_analysis("test", subject="flaky", window_seconds=0)


def test_a_request_that_never_finishes_does_not_hold_the_analysis(fleet: str) -> None:
    import uuid

    from agents.lifecycle import LifecycleEvent
    from agents.statuses import PROCESSING
    from db.history import upsert
    from tasks.analysis_pipeline import SETTLE_TRIES, start_analysis

    # Given a row stuck in "processing" inside the window (its worker died long ago) ...
    stuck = LifecycleEvent(f"stuck-{uuid.uuid4()}", PROCESSING, at=time.time() - 5, engine="flaky")
    upsert([stuck.as_record()])
    # ... the analysis waits while requests still finish, not for that one: it answers well
    # before the SETTLE_TRIES seconds it would wait for a window that keeps draining.
    report = start_analysis("test: stuck row", subject="flaky", window_seconds=60).get(
        timeout=SETTLE_TRIES / 2
    )
    assert report["engines"] == ["flaky"]


def test_a_window_with_too_few_requests_grows_until_it_can_judge(fleet: str) -> None:
    from tasks import engine_task
    from tasks.analysis_pipeline import start_analysis

    # Given a window holding 2 finished requests of the engine ...
    run_flaky(2, 0)
    window = 3.0
    # ... an analysis that needs 5 waits, its window growing forward, while 6 more arrive.
    report = start_analysis("test: sparse", subject="flaky", window_seconds=window, min_recent=5)
    time.sleep(1.5)
    later = [engine_task("flaky").delay({"payload": {"sleep": 0}}) for _ in range(6)]
    for result in later:
        result.get(timeout=30)
    judged = report.get(timeout=60)
    (recent,) = [a for a in judged["aggregates"] if a["engine"] == "flaky" and a["window"] == "recent"]
    assert recent["count"] >= 5, recent
