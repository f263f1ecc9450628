"""The detectors over one engine's samples: exact insights, and what must never fire."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.monitoring.anomaly import MEAN_AD_TO_SIGMA
from agents.monitoring.detectors import (
    engine_figures,
    failure_spike,
    find_insights,
    latency_regression,
    latency_trend,
    ms,
    score,
    span,
)
from agents.monitoring.figures import Sample
from agents.monitoring.insights import Rules, Window

RULES = Rules()
# Baseline [670, 970), recent [970, 1000).
WINDOW = Window(until=1000.0, recent_seconds=30.0, baseline_seconds=300.0)


def runs(start: float, runtimes: list[float], status: str = "success") -> list[Sample]:
    """One request a second from `start`, each finishing when its runtime is over."""
    return [
        Sample("flaky", "flaky", status, start + i, start + i + runtime, runtime)
        for i, runtime in enumerate(runtimes)
    ]


def split(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    return WINDOW.baseline(samples), WINDOW.recent(samples)


def test_a_slow_recent_window_is_a_critical_regression() -> None:
    samples = runs(700, [0.004] * 30) + runs(975, [0.31] * 10)
    insight = latency_regression("flaky", *split(samples), WINDOW, RULES)
    assert insight is not None
    assert (insight.kind, insight.subject, insight.severity) == ("latency_regression", "flaky", "critical")
    assert insight.summary == "flaky: median runtime 310 ms in the last 30 s vs 4.0 ms before (robust z 25)"
    assert insight.evidence == {
        "metric": "runtime", "baseline_median": 0.004, "recent_median": 0.31,
        "robust_z": pytest.approx(31 / MEAN_AD_TO_SIGMA), "increase": pytest.approx(76.5),
        "baseline_count": 30, "recent_count": 10,
    }  # fmt: skip


def test_twice_as_slow_is_a_warning() -> None:
    samples = runs(700, [0.09, 0.1, 0.11] * 10) + runs(975, [0.2] * 10)
    insight = latency_regression("flaky", *split(samples), WINDOW, RULES)
    assert insight is not None and insight.severity == "warning"
    # The recent median joins the baseline: MAD 0.01, so z = 0.1 / (0.01 * 1.4826).
    assert insight.evidence["robust_z"] == pytest.approx(6.745, abs=1e-3)
    assert insight.summary == "flaky: median runtime 200 ms in the last 30 s vs 100 ms before (robust z 6.7)"


@pytest.mark.parametrize(
    ("before", "after", "why"),
    [
        ([0.002] * 30, [0.01] * 10, "8 ms more: under the 20 ms floor"),
        ([1.0, 1.01, 0.99] * 10, [1.4] * 10, "40% more: under the 50% rise"),
        ([0.004] * 30, [0.31] * 4, "four recent requests are too few"),
        ([0.004] * 4, [0.31] * 10, "four baseline requests are too few"),
        ([0.1, 0.5, 0.3, 0.7, 0.2, 0.6] * 5, [0.45] * 10, "well within the baseline's spread"),
    ],
)
def test_no_regression_when_not_material_or_not_unusual(
    before: list[float], after: list[float], why: str
) -> None:
    samples = runs(700, before) + runs(975, after)
    assert latency_regression("flaky", *split(samples), WINDOW, RULES) is None, why


def test_failures_are_judged_by_ratio_not_by_speed() -> None:
    samples = runs(700, [0.004] * 30) + runs(975, [0.004] * 5) + runs(985, [0.3] * 5, "failed")
    insight = failure_spike("flaky", *split(samples), WINDOW, RULES)
    assert insight is not None and (insight.kind, insight.severity) == ("failure_spike", "critical")
    assert insight.summary == "flaky: 50% of requests failed in the last 30 s vs 0% before (5 of 10, z 4.1)"
    assert insight.evidence["z"] == pytest.approx(4.1404, abs=1e-4)
    # The slow failures do not make a latency regression: only successes are timed.
    assert find_insights("flaky", samples, WINDOW, RULES) == [insight]


def test_a_smaller_failure_spike_is_a_warning_and_a_small_one_nothing() -> None:
    baseline = runs(700, [0.004] * 29) + runs(729, [0.004], "failed")
    four = baseline + runs(975, [0.004] * 6) + runs(985, [0.004] * 4, "failed")
    insight = failure_spike("flaky", *split(four), WINDOW, RULES)
    assert insight is not None and insight.severity == "warning"
    assert insight.summary == "flaky: 40% of requests failed in the last 30 s vs 3% before (4 of 10, z 3.0)"
    three = baseline + runs(975, [0.004] * 7) + runs(985, [0.004] * 3, "failed")
    assert failure_spike("flaky", *split(three), WINDOW, RULES) is None  # z 2.4


# Twelve buckets of 100 s over [0, 1200); three requests in each.
RAMP = Window(until=1200.0, recent_seconds=100.0, baseline_seconds=1100.0)


def ramp(step: float) -> list[Sample]:
    return [s for i in range(12) for s in runs(100 * i + 10, [0.1 + step * i] * 3)]


def test_a_steady_rise_is_a_trend() -> None:
    insight = latency_trend("flaky", ramp(0.02), RAMP, RULES)
    assert insight is not None and (insight.kind, insight.severity) == ("latency_trend", "warning")
    assert (
        insight.summary
        == "flaky: median runtime rising 12 ms/min over 18 min (100 ms -> 320 ms fitted, r2 1.00)"
    )
    assert insight.evidence["slope_per_second"] == pytest.approx(0.0002)
    assert insight.evidence["increase"] == pytest.approx(2.2)
    assert len(insight.evidence["points"]) == 12
    # Under double: a heads-up only.
    gentle = latency_trend("flaky", ramp(0.006), RAMP, RULES)
    assert gentle is not None and gentle.severity == "info"
    assert "(100 ms -> 166 ms fitted" in gentle.summary
    # Under the 50% rise, falling, or too few buckets: nothing.
    assert latency_trend("flaky", ramp(0.004), RAMP, RULES) is None
    assert latency_trend("flaky", ramp(-0.005), RAMP, RULES) is None
    assert latency_trend("flaky", ramp(0.02)[:9], RAMP, RULES) is None


def test_a_step_is_reported_once_as_a_regression() -> None:
    samples = ramp(0.02) + runs(1150, [0.6] * 6)
    assert latency_trend("flaky", samples, RAMP, RULES) is not None  # the line alone would fire
    assert [i.kind for i in find_insights("flaky", samples, RAMP, RULES)] == ["latency_regression"]


def test_rejected_and_revoked_requests_are_not_judged() -> None:
    samples = runs(700, [0.004] * 30) + runs(975, [0.004] * 10) + runs(985, [5.0] * 10, "revoked")
    assert find_insights("flaky", samples, WINDOW, RULES) == []


@given(
    st.lists(st.floats(670, 999.9), min_size=0, max_size=80),
    st.floats(1e-4, 100),
    st.sampled_from(["success", "failed"]),
)
def test_a_constant_series_never_yields_an_insight(times: list[float], runtime: float, status: str) -> None:
    samples = [Sample("e", "c", status, t, t + runtime, runtime) for t in times]
    assert find_insights("e", samples, WINDOW, RULES) == []


def test_engine_figures_carry_aggregates_and_the_window() -> None:
    samples = runs(700, [0.004] * 30) + runs(975, [0.31] * 10)
    figures = engine_figures("flaky", samples, WINDOW, RULES)
    assert figures["engine"] == "flaky"
    recent, baseline = figures["aggregates"]["recent"], figures["aggregates"]["baseline"]
    assert [(a["capability"], a["count"], a["runtime_p50"]) for a in recent] == [("flaky", 10, 0.31)]
    assert [(a["capability"], a["count"], a["runtime_p50"]) for a in baseline] == [("flaky", 30, 0.004)]
    (insight,) = figures["insights"]
    assert insight["kind"] == "latency_regression"
    window = {k: insight["evidence"][k] for k in ("until", "recent_seconds", "baseline_seconds")}
    assert window == {"until": 1000.0, "recent_seconds": 30.0, "baseline_seconds": 300.0}


def test_figures_for_people() -> None:
    assert [ms(0.0042), ms(0.31), ms(0.0999), ms(12.5)] == ["4.2 ms", "310 ms", "100 ms", "12.5 s"]
    assert [span(30), span(300), span(7200)] == ["30 s", "5 min", "2 h"]
    assert [score(52.3), score(4.14), score(-3.04)] == ["52", "4.1", "-3.0"]
