"""Tally and decode (pure): what the pipeline adds up is what the exporter reads back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.telemetry import catalog as m
from agents.telemetry.tally import Tally, decode


def as_hash(tally: Tally) -> dict[str, str]:
    """What Redis holds after the tally's HINCRBY/HINCRBYFLOAT."""
    return {k: str(v) for k, v in tally.counts.items()} | {k: repr(v) for k, v in tally.sums.items()}


def test_counters_add_up_per_label_set() -> None:
    tally = Tally()
    tally.inc(m.TASK_SENT, ("agents.engine.analysis", "analysis"))
    tally.inc(m.TASK_SENT, ("agents.engine.analysis", "analysis"), 4)
    tally.inc(m.TASK_SENT, ("agents.route", "intelligence"))
    sent = decode(as_hash(tally)).counters["celery_task_sent"]
    assert sent == {("agents.engine.analysis", "analysis"): 5.0, ("agents.route", "intelligence"): 1.0}


def test_histogram_buckets_come_back_cumulative_with_count_and_sum() -> None:
    tally = Tally()
    for value in (0.003, 0.005, 0.2, 7.0, 1000.0):  # 0.005 is on a bound: le is inclusive
        tally.observe(m.TASK_RUNTIME, ("t", "q"), value)
    histogram = decode(as_hash(tally)).histograms["celery_task_runtime"][("t", "q")]
    buckets = dict(histogram.buckets)
    assert buckets["0.005"] == 2 and buckets["0.25"] == 3 and buckets["10.0"] == 4 and buckets["+Inf"] == 5
    assert histogram.count == 5 and histogram.sum == pytest.approx(1007.208)
    assert [le for le, _ in histogram.buckets][-1] == "+Inf"


def test_wrong_label_count_is_refused_with_the_metric_named() -> None:
    with pytest.raises(ValueError, match="celery_task_failed takes labels"):
        Tally().inc(m.TASK_FAILED, ("t", "q"))


def test_fields_of_unknown_metrics_are_ignored() -> None:
    assert decode({"gone_metric\x1f\x1fa": "3"}).counters == {}


def test_merge_adds_both_tallies() -> None:
    first, second = Tally(), Tally()
    first.inc(m.AGENT_TASKS, ("analysis", "success"), 2)
    second.inc(m.AGENT_TASKS, ("analysis", "success"), 3)
    second.observe(m.ROUTING_LATENCY, (), 0.001)
    first.merge(second)
    decoded = decode(as_hash(first))
    assert decoded.counters["agent_tasks"][("analysis", "success")] == 5
    assert decoded.histograms["agent_routing_latency_seconds"][()].count == 1


@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=50))
def test_every_observation_lands_in_exactly_one_bucket(values: list[float]) -> None:
    tally = Tally()
    for value in values:
        tally.observe(m.AGENT_END_TO_END, ("analysis",), value)
    histogram = decode(as_hash(tally)).histograms["agent_end_to_end_seconds"][("analysis",)]
    counts = [count for _, count in histogram.buckets]
    assert counts == sorted(counts) and counts[-1] == len(values) == histogram.count
    for bound, cumulative in histogram.buckets[:-1]:
        assert cumulative == sum(1 for v in values if v <= float(bound))
