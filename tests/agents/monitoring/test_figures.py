"""Quantiles, aggregates per capability, bucket medians and the least-squares line, exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.monitoring.figures import (
    Sample,
    aggregate,
    bucket_medians,
    by_capability,
    least_squares,
    quantile,
    success_runtimes,
)


def sample(created: float, runtime: float | None, status: str = "success", capability: str = "cap") -> Sample:
    finished = None if runtime is None else created + runtime + 0.5  # half a second queued
    return Sample("e", capability, status, created, finished, runtime)


def test_quantile_interpolates_between_closest_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert quantile(values, 0.5) == 2.5
    assert quantile(values, 0.95) == pytest.approx(3.85)  # rank 2.85: 3 + 0.85 * (4 - 3)
    assert (quantile(values, 0), quantile(values, 1)) == (1.0, 4.0)
    assert quantile([7.0], 0.95) == 7.0
    assert quantile([], 0.5) is None
    with pytest.raises(ValueError, match="q must be in"):
        quantile(values, 1.5)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), st.floats(0, 1), st.floats(0, 1))
def test_quantile_is_monotone_and_within_the_values(values: list[float], a: float, b: float) -> None:
    low, high = sorted((a, b))
    q_low, q_high = quantile(values, low), quantile(values, high)
    assert q_low is not None and q_high is not None
    assert min(values) <= q_low <= q_high + 1e-9 and q_high <= max(values)


def test_aggregate_counts_failures_and_quantiles() -> None:
    samples = [
        sample(0, 0.1),
        sample(1, 0.2),
        sample(2, 0.3),
        sample(3, 0.4, "failed"),
        sample(4, None, "failed"),
    ]
    assert aggregate(samples) == {
        "count": 5,
        "failures": 2,
        "failure_ratio": 0.4,
        "runtime_p50": pytest.approx(0.25),
        "runtime_p95": pytest.approx(0.385),
        "latency_p50": pytest.approx(0.75),
        "latency_p95": pytest.approx(0.885),
    }
    assert aggregate([])["failure_ratio"] is None
    # Only successes count for speed.
    assert success_runtimes(samples) == [0.1, 0.2, 0.3]


def test_by_capability_groups_and_orders() -> None:
    rows = by_capability([sample(0, 0.1, capability="b"), sample(1, 0.3, capability="a"), sample(2, 0.1)])
    assert [(r["engine"], r["capability"], r["count"]) for r in rows] == [
        ("e", "a", 1), ("e", "b", 1), ("e", "cap", 1),
    ]  # fmt: skip
    no_capability = Sample("e", None, "success", 0, 1, 1)
    assert by_capability([no_capability])[0]["capability"] is None


def test_bucket_medians_skip_thin_buckets_and_failures() -> None:
    samples = [sample(1, 0.1), sample(2, 0.3), sample(3, 0.2), sample(12, 9.0, "failed"), sample(25, 0.5)]
    # Three buckets of 10 s over [0, 30): 0.1, 0.3, 0.2 in the first; the failure does not count.
    assert bucket_medians(samples, 0, 30, 3) == [(5.0, 0.2), (25.0, 0.5)]
    assert bucket_medians(samples, 0, 30, 3, min_count=2) == [(5.0, 0.2)]
    # The end is open; a sample exactly there is outside.
    assert bucket_medians([sample(30, 1.0)], 0, 30, 3) == []
    with pytest.raises(ValueError, match="at least one bucket"):
        bucket_medians(samples, 0, 0, 3)


def test_least_squares_exact_values() -> None:
    line = least_squares([(0, 1), (1, 3), (2, 5)])
    assert line is not None and (line.slope, line.intercept, line.r2) == (2.0, 1.0, 1.0)
    assert line.at(10) == 21.0
    noisy = least_squares([(0, 0), (1, 1), (2, 0), (3, 1)])
    # sxx 5, sxy 1, syy 1: slope 0.2, intercept 0.5 - 0.2 * 1.5, r2 1 / (5 * 1)
    assert noisy is not None
    assert (noisy.slope, noisy.intercept, noisy.r2) == pytest.approx((0.2, 0.2, 0.2))
    flat = least_squares([(0, 3), (1, 3)])
    assert flat is not None and (flat.slope, flat.r2) == (0.0, 1.0)
    assert least_squares([(1, 1), (1, 2)]) is None and least_squares([]) is None


@given(
    st.floats(-100, 100),
    st.floats(-10, 10),
    st.lists(st.integers(0, 1000), min_size=2, max_size=20, unique=True),
)
def test_least_squares_recovers_an_exact_line(intercept: float, slope: float, xs: list[int]) -> None:
    line = least_squares([(float(x), intercept + slope * x) for x in xs])
    assert line is not None
    assert line.slope == pytest.approx(slope, abs=1e-6)
    assert line.intercept == pytest.approx(intercept, abs=1e-4)
