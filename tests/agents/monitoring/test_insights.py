"""The window, the severities and the two comparisons of a recent window with its baseline."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.monitoring.anomaly import MAD_TO_SIGMA, MEAN_AD_TO_SIGMA
from agents.monitoring.figures import Sample
from agents.monitoring.insights import Insight, Window, failure_z, latency_shift, severity_rank


def test_window_splits_recent_from_baseline() -> None:
    window = Window(until=100.0, recent_seconds=30.0, baseline_seconds=50.0)
    assert (window.start, window.split) == (20.0, 70.0)
    samples = [Sample("e", None, "success", t, None, 0.1) for t in (19.9, 20.0, 69.9, 70.0, 99.9, 100.0)]
    assert [s.created_at for s in window.baseline(samples)] == [20.0, 69.9]
    assert [s.created_at for s in window.recent(samples)] == [70.0, 99.9]


def test_severities_rank_in_rising_order() -> None:
    assert [severity_rank(s) for s in ("info", "warning", "critical", "bogus")] == [0, 1, 2, -1]


def test_latency_shift_exact_values() -> None:
    # The recent median joins the baseline: [10, 12, 11, 13, 50, 20] has median 12.5 and MAD 2.
    shift = latency_shift([10.0, 12.0, 11.0, 13.0, 50.0], [19.0, 20.0, 21.0])
    assert shift is not None
    assert (shift.baseline_median, shift.recent_median) == (12.0, 20.0)
    assert shift.z == pytest.approx(7.5 / (2 * MAD_TO_SIGMA))
    assert shift.increase == pytest.approx(8 / 12)


def test_a_constant_baseline_still_has_a_spread() -> None:
    # 30 equal runtimes: the MAD is 0, the mean absolute deviation (0.306 / 31) takes over.
    shift = latency_shift([0.004] * 30, [0.31] * 10)
    assert shift is not None
    assert shift.z == pytest.approx(31 / MEAN_AD_TO_SIGMA)
    assert shift.increase == pytest.approx(76.5)
    assert latency_shift([], [1.0]) is None and latency_shift([1.0], []) is None
    zero = latency_shift([0.0] * 5, [0.5] * 5)
    assert zero is not None and zero.increase is None  # no ratio to a zero baseline


runtimes = st.lists(st.integers(1, 10**6).map(lambda n: n / 1000), min_size=1, max_size=40)


@given(runtimes, runtimes, st.sampled_from([0.001, 0.5, 3.0, 1000.0]))
def test_scaling_every_sample_keeps_z_and_increase(
    baseline: list[float], recent: list[float], k: float
) -> None:
    shift, scaled = (
        latency_shift(baseline, recent),
        latency_shift([v * k for v in baseline], [v * k for v in recent]),
    )
    assert shift is not None and scaled is not None
    assert scaled.z == pytest.approx(shift.z, rel=1e-6, abs=1e-6)
    assert scaled.increase == pytest.approx(shift.increase, rel=1e-6)


@given(st.floats(1e-4, 1e4), st.integers(1, 50), st.integers(1, 50))
def test_a_constant_series_has_no_shift(value: float, before: int, after: int) -> None:
    shift = latency_shift([value] * before, [value] * after)
    assert shift is not None and shift.z == 0 and shift.increase == 0


def test_failure_z_exact_values() -> None:
    # 0 of 30 then 5 of 10: pooled ratio 5/40.
    expected = 0.5 / math.sqrt(5 / 40 * 35 / 40 * (1 / 30 + 1 / 10))
    assert failure_z(0, 30, 5, 10) == pytest.approx(expected)
    assert failure_z(0, 30, 5, 10) == pytest.approx(4.1404, abs=1e-4)
    assert failure_z(5, 10, 0, 30) == pytest.approx(-expected)
    # Nothing to measure against: an empty window, or every request alike.
    assert failure_z(0, 0, 5, 10) == failure_z(3, 10, 0, 0) == 0.0
    assert failure_z(0, 30, 0, 10) == failure_z(30, 30, 10, 10) == 0.0


@given(st.integers(1, 20), st.integers(0, 20), st.integers(1, 20), st.integers(1, 20))
def test_the_same_failure_ratio_scores_zero(count: int, failed: int, a: int, b: int) -> None:
    failed = min(failed, count)  # `failed` of `count`, in both windows, at two sizes
    assert failure_z(failed * a, count * a, failed * b, count * b) == pytest.approx(0.0, abs=1e-9)


def test_an_insight_is_json_ready() -> None:
    insight = Insight("latency_regression", "flaky", "critical", "slow", {"z": 5.0})
    assert insight.as_dict() == {
        "kind": "latency_regression", "subject": "flaky", "severity": "critical", "summary": "slow",
        "evidence": {"z": 5.0},
    }  # fmt: skip
