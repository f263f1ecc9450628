"""Rates, failure ratios and histogram quantiles (pure), checked against PromQL's own cases."""

from __future__ import annotations

import bisect
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.loadstats import percentile
from agents.telemetry import catalog as m
from agents.telemetry.rates import (
    Completions,
    bucket_delta,
    completions,
    completions_delta,
    counter_delta,
    failure_ratio,
    histogram_quantile,
    merge_buckets,
    rate,
)
from agents.telemetry.tally import Tally, decode

# prometheus/promql/testdata/histograms.test: `testhistogram_bucket`, cumulative, text bounds.
POSITIVE = [("0.1", 50.0), (".2", 70.0), ("1e0", 110.0), ("+Inf", 120.0)]
NEGATIVE = [("-.2", 10.0), ("-0.1", 20.0), ("0.3", 20.0), ("+Inf", 30.0)]


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.0, POSITIVE, 0.0),
        (0.2, POSITIVE, 0.048),
        (0.5, POSITIVE, 0.15),
        (0.8, POSITIVE, 0.72),
        (1.0, POSITIVE, 1.0),  # in the +Inf bucket: the highest finite bound
        (0.0, NEGATIVE, -0.2),
        (0.5, NEGATIVE, -0.15),
        (0.8, NEGATIVE, 0.3),
        (1.0, NEGATIVE, 0.3),
    ],
)
def test_quantile_matches_promql(q: float, buckets: list[tuple[str, float]], expected: float) -> None:
    assert histogram_quantile(q, buckets) == pytest.approx(expected)


def test_quantile_edge_cases_as_promql() -> None:
    assert histogram_quantile(-0.1, POSITIVE) == -math.inf
    assert histogram_quantile(1.1, POSITIVE) == math.inf
    assert math.isnan(histogram_quantile(0.5, POSITIVE[:-1]))  # no +Inf bucket
    assert math.isnan(histogram_quantile(0.5, [("0.1", 0.0), ("+Inf", 0.0)]))  # no observation
    assert math.isnan(histogram_quantile(0.5, []))
    # Non-monotonic counts (a torn read) are forced monotonic first.
    assert histogram_quantile(0.5, [("1", 10.0), ("2", 5.0), ("+Inf", 10.0)]) == pytest.approx(0.5)


def cumulative(values: list[float]) -> list[tuple[str, float]]:
    """What `agents top` reads for these runtimes: tally them, decode the hash."""
    tally = Tally()
    for value in values:
        tally.observe(m.TASK_RUNTIME, ("t", "q"), value)
    raw = {k: str(v) for k, v in tally.counts.items()} | {k: repr(v) for k, v in tally.sums.items()}
    return decode(raw).histograms[m.TASK_RUNTIME.name][("t", "q")].buckets


runtimes = st.lists(st.floats(min_value=0.0001, max_value=1000.0), min_size=1, max_size=200)
fractions = st.floats(min_value=0.001, max_value=1.0)


@given(runtimes, fractions)
def test_quantile_lies_in_the_bucket_of_the_exact_quantile(values: list[float], q: float) -> None:
    estimate = histogram_quantile(q, cumulative(values))
    exact = percentile(sorted(values), q)
    bounds = m.TASK_RUNTIME.buckets
    index = bisect.bisect_left(bounds, exact)  # le is inclusive, as the tally files it
    if index == len(bounds):  # beyond the last bound: PromQL answers that bound
        assert estimate == bounds[-1]
    else:
        lower = bounds[index - 1] if index else 0.0
        assert lower <= estimate <= bounds[index]


@given(runtimes, fractions, fractions)
def test_quantile_grows_with_q(values: list[float], q1: float, q2: float) -> None:
    buckets = cumulative(values)
    low, high = sorted((q1, q2))
    assert histogram_quantile(low, buckets) <= histogram_quantile(high, buckets) + 1e-12


@given(runtimes, runtimes)
def test_bucket_delta_is_the_later_observations(first: list[float], later: list[float]) -> None:
    before, after = cumulative(first), cumulative(first + later)
    assert bucket_delta(before, after) == merge_buckets([cumulative(later)])
    assert bucket_delta(None, after) == merge_buckets([after])
    assert bucket_delta(after, before) == merge_buckets([before])  # a reset: all of it is new


def test_merge_buckets_sums_by_le() -> None:
    merged = merge_buckets([[("0.1", 1.0), ("+Inf", 2.0)], [("0.1", 3.0), ("+Inf", 3.0)]])
    assert merged == [(0.1, 4.0), (math.inf, 5.0)]


@given(st.floats(min_value=0, max_value=1e9), st.floats(min_value=0, max_value=1e9))
def test_counter_delta_is_never_negative_and_handles_resets(previous: float, current: float) -> None:
    delta = counter_delta(previous, current)
    assert delta >= 0
    assert delta == (current - previous if current >= previous else current)


def test_rate_needs_two_readings() -> None:
    assert rate(None, 10.0, 2.0) is None
    assert rate(10.0, 30.0, 0.0) is None
    assert rate(10.0, 30.0, 2.0) == 10.0
    assert rate(50.0, 6.0, 2.0) == 3.0  # reset in between


@given(st.floats(min_value=0, max_value=1e6), st.floats(min_value=0, max_value=1e6))
def test_failure_ratio_is_a_share(failed: float, completed: float) -> None:
    ratio = failure_ratio(failed, completed)
    if completed == 0:
        assert ratio is None
    else:
        assert ratio is not None and 0.0 <= ratio <= 1.0


def test_completions_count_final_statuses_and_failures() -> None:
    agent_tasks: dict[tuple[str, ...], float] = {
        ("analysis", "success"): 8.0,
        ("analysis", "failed"): 2.0,
        ("analysis", "retrying"): 5.0,  # a stage, not a completion
        ("intelligence", "rejected"): 3.0,  # router refusals: completed, not failed
    }
    assert completions(agent_tasks) == {
        "analysis": Completions(10.0, 2.0),
        "intelligence": Completions(3.0, 0.0),
    }
    assert failure_ratio(2.0, 10.0) == 0.2


def test_completions_delta_between_readings() -> None:
    before = {"analysis": Completions(10.0, 2.0)}
    now = {"analysis": Completions(15.0, 2.0), "new": Completions(4.0, 1.0)}
    assert completions_delta(before, now) == {"analysis": Completions(5.0, 0.0), "new": Completions(4.0, 1.0)}
    assert completions_delta(None, now) == now
