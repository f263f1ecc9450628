"""The arithmetic of `python -m bench.scaling`: baseline subtraction and the projected ceilings."""

from __future__ import annotations

import json

import pytest

from agents.lifecycle import merge
from bench.scaling import (
    delta,
    history_ceiling,
    net_of_idle,
    redis_ceiling,
    saturation_rate,
    synthetic_records,
    top_commands,
)


def test_delta_counts_a_counter_new_in_the_second_sample_from_zero() -> None:
    assert delta({"cmd:get": 15.0, "cmd:set": 4.0}, {"cmd:get": 10.0}) == {"cmd:get": 5.0, "cmd:set": 4.0}


def test_the_idle_baseline_is_scaled_to_the_load_window_before_it_is_subtracted() -> None:
    # 30 s idle: 300 commands; a 45 s load window: 9,450. Idle share 300 * 1.5 = 450.
    net = net_of_idle({"commands": 9450.0, "redis_cpu": 3.0}, {"commands": 300.0, "redis_cpu": 0.2}, 45 / 30)
    assert net == pytest.approx({"commands": 9000.0, "redis_cpu": 2.7})


def test_top_commands_are_per_request_most_frequent_first_without_the_bench_own_info() -> None:
    net = {"cmd:evalsha": 600.0, "cmd:rpush": 900.0, "cmd:info": 5000.0, "cmd:ping": 0.0, "commands": 1.0}
    assert top_commands(net, 300) == {"rpush": 3.0, "evalsha": 2.0}
    assert list(top_commands(net, 300, count=1)) == ["rpush"]


def test_one_redis_core_saturates_at_the_inverse_of_its_cpu_per_request() -> None:
    # 0.25 ms of Redis CPU per request: 4,000 req/s fill one core, 2,800 at 70%.
    ceiling = redis_ceiling(commands_per_request=20.0, cpu_seconds_per_request=0.00025)
    assert ceiling["requests_per_s"] == pytest.approx(4000.0)
    assert ceiling["requests_per_s_at_headroom"] == pytest.approx(2800.0)
    assert ceiling["commands_per_s"] == pytest.approx(80_000.0)
    assert ceiling["commands_per_s_at_headroom"] == pytest.approx(56_000.0)
    assert redis_ceiling(20.0, 0.00025, headroom=0.5)["requests_per_s_at_headroom"] == pytest.approx(2000.0)


def test_the_history_ceiling_divides_rows_per_second_by_rows_per_request() -> None:
    ceiling = history_ceiling(rows_per_s=9000.0, rows_per_request=1.5)
    assert ceiling == pytest.approx({"requests_per_s": 6000.0, "requests_per_s_at_headroom": 4200.0})


def test_saturation_scales_with_capacity_and_refuses_a_cost_that_is_not_positive() -> None:
    assert saturation_rate(0.002, capacity=4) == pytest.approx(2000.0)
    for cost, capacity in ((0.0, 1.0), (-1.0, 1.0), (0.001, 0.0)):
        with pytest.raises(ValueError, match="must be positive"):
            saturation_rate(cost, capacity)


def test_synthetic_records_fold_into_one_successful_routed_row_per_request() -> None:
    template = {"payload": {"data": [1, 2]}, "result": {"count": 2}, "worker": "analysis@h", "reason": "best"}
    records = [json.loads(r) for r in synthetic_records(50, template)]
    assert len(records) == 200
    assert [r["at"] for r in records] == sorted(r["at"] for r in records)
    rows = merge(records)
    assert len(rows) == 50
    row = next(iter(rows.values()))
    assert row["status"] == "success"
    assert (row["engine"], row["result"], row["payload"], row["reason"]) == (
        "analysis",
        {"count": 2},
        {"data": [1, 2]},
        "best",
    )
    assert row["finished_at"] > row["started_at"] > row["created_at"]
