"""The built-in engines' pure logic, and their payload schemas (run in this process, no server)."""

from __future__ import annotations

from typing import Any

import pytest

from agents.base import BaseAgent
from agents.engines.analysis import AnalysisEngine, describe
from agents.engines.optimization import OptimizationEngine, recommend
from agents.engines.performance import PerformanceEngine, percentile, summarise
from agents.errors import InvalidRequest
from agents.execution import execute


def test_analysis_flags_the_outlier() -> None:
    values = [10.0] * 20 + [100.0]
    result = describe(values, z_limit=3.0)
    assert [a["index"] for a in result["anomalies"]] == [20]
    assert result["count"] == 21


def test_analysis_constant_series_has_no_anomaly() -> None:
    assert describe([5.0, 5.0, 5.0])["anomalies"] == []


def test_analysis_empty_series_is_invalid() -> None:
    with pytest.raises(InvalidRequest, match="payload.data"):
        describe([])


def test_performance_percentile_is_nearest_rank() -> None:
    assert percentile([float(v) for v in range(1, 101)], 0.95) == 95.0


def test_performance_reports_breaches_over_threshold() -> None:
    result = summarise({"latency_ms": [10, 20, 500], "cpu": [1, 2]}, {"latency_ms": 100, "cpu": 50})
    assert [b["metric"] for b in result["breaches"]] == ["latency_ms"]


def test_optimization_rules_fire_in_order() -> None:
    actions = recommend({"cpu_percent": 95, "queue_depth": 5000, "error_rate": 0.0})
    assert [a["action"] for a in actions] == ["scale_up", "add_workers"]


def test_optimization_idle_suggests_scale_down() -> None:
    assert [a["action"] for a in recommend({"cpu_percent": 3})] == ["scale_down"]


def run(engine: BaseAgent, payload: object, capability: str | None = None) -> Any:
    request = {"payload": payload} | ({"capability": capability} if capability else {})
    return execute(engine, request, task_id="t")


@pytest.mark.parametrize(
    ("engine", "payload", "problems"),
    [
        (
            AnalysisEngine(), {"data": [1, "x", float("nan")], "z_limit": 0},
            "data.1: Input should be a valid number, unable to parse string as a number; "
            "data.2: Input should be a finite number; z_limit: Input should be greater than 0",
        ),
        (AnalysisEngine(), {"data": "not a list"}, "data: Input should be a valid list"),
        (
            PerformanceEngine(), {"metrics": {"cpu": [1, None], "mem": []}, "thresholds": []},
            "metrics.cpu.1: Input should be a valid number; "
            "metrics.mem: List should have at least 1 item after validation, not 0; "
            "thresholds: Input should be a valid dictionary",
        ),
        (OptimizationEngine(), {}, "snapshot: Field required"),
        (OptimizationEngine(), {"snapshot": {"cpu_percent": "hot"}}, "snapshot.cpu_percent: Input should be"),
    ],
)  # fmt: skip
def test_bad_payloads_name_every_bad_field(engine: BaseAgent, payload: object, problems: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        run(engine, payload)
    prefix = f"payload invalid for task_type 'default' of engine '{engine.name}': "
    assert str(caught.value).startswith(prefix + problems)


def test_the_payload_shapes_of_today_still_work() -> None:
    assert run(AnalysisEngine(), {"data": [1, "2", 3]})["mean"] == 2.0
    assert run(PerformanceEngine(), {"metrics": {"cpu": [50, 99]}}, "monitoring")["breaches"] == []
    assert run(PerformanceEngine(), {}) == {"summary": {}, "breaches": []}
    actions = run(OptimizationEngine(), {"snapshot": {"cpu_percent": 95}, "extra": "ignored"})
    assert actions["actions"] == [
        {"action": "scale_up", "metric": "cpu_percent", "value": 95.0, "reason": "CPU above 80%"}
    ]
