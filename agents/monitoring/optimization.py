"""The optimization engine's rules and decisions. Pure: what to do, whether it may be done now, and
whether it helped. Carrying an action out (Celery's remote control) and recording it are elsewhere.

A rule: when `metric` of an engine compares to `value` for `for` long, apply `action` (within
`bounds`, not within `cooldown` of the last action on that engine, never while another action on
the engine is still settling), then after `settle` seconds compare the rule's metric before and
after: helped, no change, or hurt (an action that hurt is reverted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.monitoring.thresholds import COMPARISONS, METRICS, Comparison, seconds, selected, validate_yaml

Action = Literal["pool_grow", "pool_shrink", "rate_limit", "add_consumer", "cancel_consumer", "time_limit"]
Verdict = Literal["helped", "no_change", "hurt"]
Limits = tuple[float | None, float | None]  # an engine task's (soft, hard) time limits, seconds
# The action that undoes each one (rate_limit is undone by the rate it replaced).
REVERSE: dict[str, str] = {
    "pool_grow": "pool_shrink",
    "pool_shrink": "pool_grow",
    "add_consumer": "cancel_consumer",
    "cancel_consumer": "add_consumer",
    "rate_limit": "rate_limit",
    "time_limit": "time_limit",
}


class Rule(BaseModel):
    """One optimization rule: a condition on an engine's snapshot, an action, its guards."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=100)
    selector: str = Field("*", min_length=1)
    metric: Literal[METRICS]  # type: ignore[valid-type]
    comparison: Comparison
    value: float
    for_seconds: float = Field(0.0, ge=0, alias="for")
    action: Action
    amount: int = Field(1, ge=1, le=64, description="processes for pool_grow / pool_shrink")
    rate: str | None = Field(None, description="rate_limit's new rate, e.g. 100/s (empty: none)")
    queue: str | None = Field(None, description="add_consumer / cancel_consumer: default, the engine's queue")
    time_limit: float | None = Field(None, gt=0, description="time_limit's new hard limit, seconds")
    soft_time_limit: float | None = Field(None, gt=0, description="time_limit's new soft limit, seconds")
    min_concurrency: int = Field(1, ge=1)
    max_concurrency: int = Field(16, ge=1)
    cooldown_seconds: float = Field(300.0, ge=0, alias="cooldown")
    settle_seconds: float = Field(60.0, gt=0, alias="settle")
    judge: Literal[METRICS] | None = None  # type: ignore[valid-type]  # the verdict's metric (default: metric)
    better: Literal["lower", "higher"] = "lower"  # which way the judged metric should move
    tolerance: float = Field(0.05, ge=0, description="a relative change below this is no change")

    @field_validator("for_seconds", "cooldown_seconds", "settle_seconds", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return seconds(value)

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.min_concurrency > self.max_concurrency:
            raise ValueError("min_concurrency is above max_concurrency")
        if self.action == "rate_limit" and self.rate is None:
            raise ValueError("rate_limit needs `rate` (e.g. 100/s)")
        if self.action == "time_limit" and self.time_limit is None:
            raise ValueError("time_limit needs `time_limit` (seconds; `soft_time_limit` optional)")
        if self.time_limit and self.soft_time_limit and self.soft_time_limit >= self.time_limit:
            raise ValueError("soft_time_limit must be below time_limit")
        return self

    @property
    def judged_by(self) -> str:
        """The metric whose move after the settle window is the action's verdict."""
        return str(self.judge or self.metric)

    def holds(self, measured: float) -> bool:
        """Whether a measured value meets the rule's condition."""
        return bool(COMPARISONS[self.comparison](float(measured), self.value))


class Rules(BaseModel):
    """An optimization rules file; `dry_run` records what would be done and does nothing."""

    model_config = ConfigDict(extra="forbid")

    rules: list[Rule]
    dry_run: bool = False


def parse_rules(text: str, source: str = "<rules>") -> Rules:
    """Validate a rules YAML document; ThresholdConfigError names each problem's line and field."""
    return validate_yaml(Rules, text, source)


@dataclass(frozen=True, slots=True)
class Decision:
    """An action to take (or, dry run, to record) on an engine: the condition's value, and the
    judged metric's value before it."""

    rule: Rule
    engine: str
    action: str
    params: dict[str, Any]
    before: float
    at: float
    dry_run: bool
    value: float = 0.0


@dataclass(slots=True)
class ActionState:
    """Per rule and engine: since when the condition holds; per engine: the last action's time and
    whether one is still settling."""

    holding_since: dict[tuple[str, str], float] = field(default_factory=dict)
    last_action: dict[str, float] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)


def decide(
    rules: Rules, measurements: dict[str, dict[str, float]], concurrency: dict[str, int], now: float,
    state: ActionState, limits: Mapping[str, Limits] | None = None,
) -> list[Decision]:  # fmt: skip
    """The actions this snapshot calls for, at most one per engine, guards applied; `limits` are
    the engines' (soft, hard) time limits now, which a time_limit action records to revert to."""
    decisions: list[Decision] = []
    for rule in rules.rules:
        for engine, metrics in sorted(measurements.items()):
            if not selected(rule.selector, engine) or rule.metric not in metrics:
                continue
            if rule.judged_by not in metrics:  # an action that could not be judged is not taken
                continue
            key = (rule.name, engine)
            value = float(metrics[rule.metric])
            if not rule.holds(value):
                state.holding_since.pop(key, None)
                continue
            since = state.holding_since.setdefault(key, now)
            if now - since < rule.for_seconds or engine in state.in_flight:
                continue
            if now - state.last_action.get(engine, float("-inf")) < rule.cooldown_seconds:
                continue
            params = _params(rule, engine, concurrency.get(engine), (limits or {}).get(engine, (None, None)))
            if params is None:  # out of bounds
                continue
            before = metrics[rule.judged_by]
            decisions.append(Decision(rule, engine, rule.action, params, before, now, rules.dry_run, value))
            state.last_action[engine] = now
            if not rules.dry_run:
                state.in_flight.add(engine)
    return decisions


def sized_engines(rules: Rules, measurements: dict[str, dict[str, float]]) -> list[str]:
    """Engines a pool rule's condition holds for now: only their pool size is worth asking for."""
    return sorted(
        engine
        for engine, metrics in measurements.items()
        for rule in rules.rules
        if rule.action in ("pool_grow", "pool_shrink") and selected(rule.selector, engine)
        and rule.metric in metrics and rule.holds(metrics[rule.metric])
    )  # fmt: skip


def _params(rule: Rule, engine: str, concurrency: int | None, limits: Limits) -> dict[str, Any] | None:
    if rule.action in ("pool_grow", "pool_shrink"):
        if concurrency is None:
            return None
        change = rule.amount if rule.action == "pool_grow" else -rule.amount
        if not rule.min_concurrency <= concurrency + change <= rule.max_concurrency:
            return None
        return {"n": rule.amount, "from": concurrency, "to": concurrency + change}
    if rule.action == "rate_limit":
        return {"rate": rule.rate}
    if rule.action == "time_limit":
        soft, hard = limits
        return {"soft": rule.soft_time_limit, "hard": rule.time_limit, "from": {"soft": soft, "hard": hard}}
    return {"queue": rule.queue or engine}


def verdict(before: float, after: float, better: str, tolerance: float = 0.05) -> Verdict:
    """Helped, no change or hurt: the metric's move after the settle window, relative to before."""
    scale = max(abs(before), 1e-9)
    change = (after - before) / scale
    if abs(change) <= tolerance:
        return "no_change"
    improved = change < 0 if better == "lower" else change > 0
    return "helped" if improved else "hurt"


def revert(
    action: str, params: dict[str, Any], previous_rate: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The action and parameters that undo one (rate_limit goes back to `previous_rate`)."""
    undo = REVERSE[action]
    if action in ("pool_grow", "pool_shrink"):
        return undo, {"n": params["n"], "from": params["to"], "to": params["from"]}
    if action == "rate_limit":
        return undo, {"rate": previous_rate}
    if action == "time_limit":
        back = params["from"]
        return undo, {
            "soft": back["soft"],
            "hard": back["hard"],
            "from": {"soft": params["soft"], "hard": params["hard"]},
        }
    return undo, dict(params)
