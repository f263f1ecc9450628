"""`agents demo`'s scenario as a test, on real servers and workers: the platform notices the degraded
engine, alerts, explains it, acts, judges its action, and routing wins the engine back."""

from __future__ import annotations

import pytest
import redis

from agents.demo.run import run_demo
from agents.demo.script import GREEN, phases
from agents.telemetry import store

pytestmark = pytest.mark.servers


@pytest.mark.timeout(300)  # about 75 s of scenario, then up to 60 s for the backlog to drain
def test_the_platform_notices_acts_measures_and_explains(
    demo_workers: tuple[str, str], nats_server: object, redis_client: redis.Redis
) -> None:
    lines: list[str] = []
    outcome, results = run_demo(
        phases(steady=8, degrade=35, recover=30), rate=80, workers=False, echo=lines.append
    )
    print("\n".join(lines))
    missed = [description for description, ok in results if not ok]
    assert not missed, (missed, lines)
    # Which of green's thresholds fires depends on the few requests routing still sends it (a
    # 2 s reading of 3 requests, half failing, can read 0% failed), so any of them will do; each
    # fired once, not once per evaluation (one open row per threshold and engine).
    fired = [a["name"] for a in outcome.alerts if a["engine"] == GREEN]
    assert set(fired) & {"DemoEngineFailing", "DemoEngineSlow"}, outcome.alerts
    assert len(fired) == len(set(fired)), fired
    # An insight triggered an optimization rule, and every verdict came back as an insight.
    assert any(a["rule"] == "DemoGrowOnInsight" for a in outcome.actions), outcome.actions
    judged = {a["id"] for a in outcome.actions if a.get("verdict")}
    reported = {i["data"]["action_id"] for i in outcome.insights if i["kind"] == "action_verdict"}
    assert judged and judged <= reported
    # What they did is counted for Prometheus and Grafana (agents exporter serves these).
    counted = " ".join(store.read(redis_client).counters)
    # (Breaker transitions are checked where a breaker opens for sure, test_learning_router.py:
    # here green fails half its requests, and five in a row before routing moves away is luck.)
    for metric in ("agent_alerts", "agent_insights", "agent_optimization_actions"):
        assert metric in counted, metric
