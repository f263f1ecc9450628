"""The pipeline runs every hook in order, keeps going past a broken one, and lets an unreachable
server through (so a batch goes back to the queue instead of losing its records). No servers."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator, Sequence

import billiard.pool
import pytest
import redis
from billiard.exceptions import SoftTimeLimitExceeded
from structlog.testing import capture_logs

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


class SoftLimitMidway(Recorder):
    """Sends itself the soft time limit's signal, as billiard's parent does, then goes on."""

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.05)  # the signal is handled between bytecodes: it has landed by now
        super().after_process(outcomes)


@pytest.fixture()
def armed_soft_limit() -> Iterator[None]:
    """This process looks like a pool process with a soft time limit armed (billiard's handler)."""
    previous = signal.signal(signal.SIGUSR1, billiard.pool.soft_timeout_sighandler)
    yield
    signal.signal(signal.SIGUSR1, previous)


def test_a_soft_time_limit_landing_in_the_hooks_cuts_none_of_them_short(armed_soft_limit: None) -> None:
    seen: list[str] = []
    with capture_logs() as logs:
        Pipeline([SoftLimitMidway(seen, "a"), Recorder(seen, "b")]).after_process(outcomes())
    assert seen == ["a:3", "b:3"]
    assert [entry["event"] for entry in logs] == ["soft_time_limit_after_handlers"]
    # Outside the pipeline's step the same signal does raise: the handler above was armed.
    with pytest.raises(SoftTimeLimitExceeded):
        SoftLimitMidway(seen, "c").after_process(outcomes())
