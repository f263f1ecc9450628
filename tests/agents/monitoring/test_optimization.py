"""Optimization rules: the guards (for, bounds, cooldown, one in flight, dry run), verdicts, reverts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.monitoring.optimization import ActionState, decide, parse_rules, revert, sized_engines, verdict
from agents.monitoring.thresholds import ThresholdConfigError

RULES = """\
rules:
  - name: GrowOnBacklog
    metric: queue_depth
    comparison: ">"
    value: 100
    for: 30s
    action: pool_grow
    amount: 2
    max_concurrency: 6
    cooldown: 5m
    settle: 1m
"""


def deep(depth: float) -> dict[str, dict[str, float]]:
    return {"analysis": {"queue_depth": depth}}


def test_grows_after_for_then_waits_for_settle_and_cooldown() -> None:
    rules, state = parse_rules(RULES), ActionState()
    assert decide(rules, deep(500), {"analysis": 2}, 0, state) == []  # holding, not yet 30 s
    (grow,) = decide(rules, deep(500), {"analysis": 2}, 30, state)
    assert (grow.engine, grow.action, grow.params, grow.before) == (
        "analysis",
        "pool_grow",
        {"n": 2, "from": 2, "to": 4},
        500,
    )
    assert decide(rules, deep(500), {"analysis": 4}, 60, state) == []  # in flight (settling)
    state.in_flight.discard("analysis")  # settled
    assert decide(rules, deep(500), {"analysis": 4}, 200, state) == []  # cooldown: 5 m from 30 s
    (again,) = decide(rules, deep(500), {"analysis": 4}, 331, state)
    assert again.params == {"n": 2, "from": 4, "to": 6}
    state.in_flight.clear()
    assert decide(rules, deep(500), {"analysis": 6}, 700, state) == []  # 8 > max_concurrency 6


def test_dry_run_records_without_blocking_later_decisions_on_flight() -> None:
    rules = parse_rules(RULES + "dry_run: true\n")
    state = ActionState()
    decide(rules, deep(500), {"analysis": 2}, 0, state)
    (dry,) = decide(rules, deep(500), {"analysis": 2}, 30, state)
    assert dry.dry_run and state.in_flight == set()


def test_verdicts_and_reverts() -> None:
    assert verdict(1000, 400, "lower") == "helped"
    assert verdict(1000, 1030, "lower") == "no_change"
    assert verdict(1000, 1500, "lower") == "hurt"
    assert verdict(10, 20, "higher") == "helped"
    rules, state = parse_rules(RULES), ActionState()
    decide(rules, deep(500), {"analysis": 2}, 0, state)
    (grow,) = decide(rules, deep(500), {"analysis": 2}, 30, state)
    assert revert(grow.action, grow.params) == ("pool_shrink", {"n": 2, "from": 4, "to": 2})


def test_bad_rules_are_refused_by_line_and_field() -> None:
    bad = RULES.replace("action: pool_grow", "action: reboot").replace(
        "max_concurrency: 6", "max_concurrency: 6\n    min_concurrency: 9"
    )
    with pytest.raises(ThresholdConfigError) as caught:
        parse_rules(bad, "rules.yml")
    assert "rules.yml:7: rules.0.action: Input should be" in str(caught.value)
    with pytest.raises(ThresholdConfigError, match="min_concurrency is above max_concurrency"):
        parse_rules(bad.replace("action: reboot", "action: pool_grow"))
    with pytest.raises(ThresholdConfigError, match="rate_limit needs `rate`"):
        parse_rules(RULES.replace("action: pool_grow", "action: rate_limit"))


@given(st.floats(0.01, 1e6), st.floats(0, 1e6))
def test_helped_and_hurt_are_mirror_images(before: float, after: float) -> None:
    lower, higher = verdict(before, after, "lower"), verdict(before, after, "higher")
    assert (lower, higher) in {("no_change", "no_change"), ("helped", "hurt"), ("hurt", "helped")}


def test_only_engines_a_pool_rule_holds_for_are_sized() -> None:
    rules = parse_rules(RULES)
    measured: dict[str, dict[str, float]] = {
        "analysis": {"queue_depth": 500},
        "performance": {"queue_depth": 3},
        "other": {},
    }
    assert sized_engines(rules, measured) == ["analysis"]


JUDGED = """\
rules:
  - name: GrowOnInsight
    metric: insights_recent
    comparison: ">="
    value: 1
    action: pool_grow
    amount: 1
    settle: 15s
    judge: runtime_p95_seconds
"""


def test_an_insight_triggers_a_rule_judged_by_another_metric() -> None:
    rules, state = parse_rules(JUDGED), ActionState()
    slowed = {"green": {"insights_recent": 1.0, "runtime_p95_seconds": 0.49}}
    (grow,) = decide(rules, slowed, {"green": 2}, 0, state)
    assert (grow.engine, grow.action, grow.value, grow.before) == ("green", "pool_grow", 1.0, 0.49)
    assert grow.rule.judged_by == "runtime_p95_seconds"
    # Without the judged metric (nothing completed in the window) the action is not taken.
    unjudgeable = {"blue": {"insights_recent": 1.0}}
    assert decide(rules, unjudgeable, {"blue": 2}, 0, ActionState()) == []


def test_judge_must_be_a_known_metric() -> None:
    with pytest.raises(ThresholdConfigError, match="judge"):
        parse_rules(JUDGED.replace("judge: runtime_p95_seconds", "judge: happiness"))


LIMITS = """\
rules:
  - name: ShorterLimits
    metric: runtime_p95_seconds
    comparison: ">"
    value: 2
    action: time_limit
    soft_time_limit: 4
    time_limit: 5
"""


def test_a_time_limit_action_records_the_limits_it_replaces_and_reverts_to_them() -> None:
    rules = parse_rules(LIMITS)
    slow = {"flaky": {"runtime_p95_seconds": 3.0}}
    (cut,) = decide(rules, slow, {}, 0, ActionState(), {"flaky": (7.0, 8.0)})
    assert cut.params == {"soft": 4.0, "hard": 5.0, "from": {"soft": 7.0, "hard": 8.0}}
    assert revert("time_limit", cut.params) == (
        "time_limit",
        {"soft": 7.0, "hard": 8.0, "from": {"soft": 4.0, "hard": 5.0}},
    )


def test_time_limit_rules_are_checked() -> None:
    with pytest.raises(ThresholdConfigError, match="time_limit needs"):
        parse_rules(LIMITS.replace("    time_limit: 5\n", ""))
    with pytest.raises(ThresholdConfigError, match="soft_time_limit must be below"):
        parse_rules(LIMITS.replace("soft_time_limit: 4", "soft_time_limit: 6"))
