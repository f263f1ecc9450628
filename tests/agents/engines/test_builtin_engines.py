"""The built-in engines' pure logic."""

from __future__ import annotations

import pytest

from agents.engines.analysis import describe
from agents.engines.optimization import recommend
from agents.engines.performance import percentile, summarise
from agents.errors import InvalidRequest


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
