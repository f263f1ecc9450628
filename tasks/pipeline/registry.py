"""The hooks, registered once, and the calls that run them in order.

Built-in hooks first, then those named in AGENT_HOOKS (`module:Class`, like AGENT_ENGINES). A
hook that fails is logged and the others still run, except when a server is unreachable: then
the error propagates, so a batch goes back to the queue instead of losing its records.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import structlog

from agents.connections import redis_client
from agents.errors import EngineConfigError
from agents.recorder import collecting
from agents.settings import get_settings
from tasks import tracing
from tasks.internals.billiard import soft_limit_held
from tasks.outage import UNREACHABLE
from tasks.pipeline.delivery import Delivery, Outcome, Published
from tasks.pipeline.hook import Hook

log = structlog.get_logger("agents.pipeline")


class Pipeline:
    """Runs every registered hook for one step of many requests' lives."""

    def __init__(self, hooks: Sequence[Hook]) -> None:
        self.hooks = list(hooks)

    def after_publish(self, published: Sequence[Published]) -> None:
        """Tell every hook about task messages just handed to the broker."""
        if published:
            self._run("after_publish", published, by_tracer=False)

    def before_process(self, deliveries: Sequence[Delivery], *, by_tracer: bool = False) -> None:
        """Tell every hook that these requests are about to run."""
        if deliveries:
            self._run("before_process", deliveries, by_tracer=by_tracer)

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        """Tell every hook how these requests ended (all from one path: tracer or batch).

        Their handlers are done: a soft time limit arriving now would only cut a hook short."""
        if not outcomes:
            return
        with soft_limit_held() as fired:
            self._run("after_process", outcomes, by_tracer=outcomes[0].by_tracer)
        if fired:
            log.warning("soft_time_limit_after_handlers", count=len(outcomes), task_ids=_ids(outcomes))

    def after_skip(self, deliveries: Sequence[Delivery], reason: str, *, by_tracer: bool = False) -> None:
        """Tell every hook that these requests were dropped, and why."""
        if deliveries:
            self._run("after_skip", deliveries, reason, by_tracer=by_tracer)

    def _run(self, step: str, items: Sequence[Any], *args: Any, by_tracer: bool) -> None:
        # The step's lifecycle records and metric counts go to Redis in one round trip at its end.
        with collecting(redis_client()):
            for hook in self.hooks:
                if by_tracer and hook.tracer_does_it:
                    continue
                try:
                    getattr(hook, step)(items, *args)
                except UNREACHABLE:
                    raise
                except Exception as exc:  # one broken concern must not take the others down
                    log.exception(
                        "hook_failed", hook=type(hook).__name__, step=step, count=len(items), error=repr(exc)
                    )


def _ids(outcomes: Sequence[Outcome]) -> list[str]:
    return [outcome.delivery.id for outcome in outcomes[:10]]


def load_hook(path: str) -> Hook:
    """Import `module:Class` (a Hook subclass, instantiated without arguments) or a Hook instance."""
    module_name, _, attribute = path.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise EngineConfigError(f"AGENT_HOOKS entry {path!r}: {exc}") from exc
    if isinstance(target, type) and issubclass(target, Hook):
        return target()
    if isinstance(target, Hook):
        return target
    raise EngineConfigError(f"AGENT_HOOKS entry {path!r} is a {type(target).__name__}, not a Hook")


def builtin_hooks() -> list[Hook]:
    """The platform's own steps, in the order they run."""
    from tasks.pipeline.breaker import BreakerHook
    from tasks.pipeline.bridge_reply import BridgeReplyHook
    from tasks.pipeline.followups import FollowUpHook
    from tasks.pipeline.history import HistoryHook
    from tasks.pipeline.metrics import MetricsHook
    from tasks.pipeline.rejections import RejectionCountsHook
    from tasks.pipeline.results import ResultHook
    from tasks.pipeline.retries import RetryHook
    from tasks.pipeline.task_events import TaskEventsHook

    # History first (the durable record; its records and the metrics' counts are written together
    # at the end of each step), results before retries (a fast retry's own result
    # must not be overwritten by this attempt's RETRY state), callbacks last (as Celery does).
    hooks: list[Hook] = [
        HistoryHook(),
        MetricsHook(),
        BreakerHook(),
        RejectionCountsHook(),
        ResultHook(),
        RetryHook(),
        TaskEventsHook(),
        BridgeReplyHook(),
        FollowUpHook(),
    ]
    if tracing.enabled():  # OTEL_ENABLED: batch tasks' request spans, opened before the others run
        from tasks.pipeline.tracing import TraceHook

        hooks.insert(0, TraceHook())
    return hooks


@lru_cache(maxsize=1)
def pipeline() -> Pipeline:
    """This process's pipeline: the built-in hooks, then AGENT_HOOKS."""
    extra = [load_hook(path) for path in get_settings().hook_paths]
    return Pipeline([*builtin_hooks(), *extra])
