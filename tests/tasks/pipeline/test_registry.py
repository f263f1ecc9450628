"""The pipeline runs every hook in order, keeps going past a broken one, and lets an unreachable
server through (so a batch goes back to the queue instead of losing its records). No servers."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import redis

from agents.errors import EngineConfigError
from agents.statuses import SUCCESS
from tasks.pipeline.delivery import Delivery, Outcome
from tasks.pipeline.hook import Hook
from tasks.pipeline.registry import Pipeline, load_hook


class Recorder(Hook):
    def __init__(self, seen: list[str], name: str) -> None:
        self.seen, self.name = seen, name

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        self.seen.append(f"{self.name}:{len(outcomes)}")


class Broken(Hook):
    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        raise ValueError("a bug in one concern")


class Unreachable(Hook):
    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        raise redis.ConnectionError("Redis is away")


class TracerDoesIt(Recorder):
    tracer_does_it = True


def outcomes(by_tracer: bool = False) -> list[Outcome]:
    return [
        Outcome(Delivery(id=str(n), task="agents.engine.x"), SUCCESS, by_tracer=by_tracer) for n in range(3)
    ]


def test_every_hook_runs_in_order_with_the_whole_batch_even_after_a_broken_one() -> None:
    seen: list[str] = []
    Pipeline([Recorder(seen, "a"), Broken(), Recorder(seen, "b")]).after_process(outcomes())
    assert seen == ["a:3", "b:3"]


def test_an_unreachable_server_stops_the_batch() -> None:
    seen: list[str] = []
    with pytest.raises(redis.ConnectionError):
        Pipeline([Recorder(seen, "a"), Unreachable(), Recorder(seen, "b")]).after_process(outcomes())
    assert seen == ["a:3"]


def test_steps_celerys_tracer_did_are_skipped_for_its_outcomes() -> None:
    seen: list[str] = []
    steps = Pipeline([Recorder(seen, "all"), TracerDoesIt(seen, "batch-only")])
    steps.after_process(outcomes(by_tracer=True))
    steps.after_process(outcomes(by_tracer=False))
    assert seen == ["all:3", "all:3", "batch-only:3"]


def test_agent_hooks_entries_are_checked() -> None:
    assert isinstance(load_hook("tests.hooks:ProbeHook"), Hook)
    with pytest.raises(EngineConfigError, match="AGENT_HOOKS entry 'tests.hooks:nope'"):
        load_hook("tests.hooks:nope")
    with pytest.raises(EngineConfigError, match="is a function, not a Hook"):
        load_hook("tests.hooks:probed")
