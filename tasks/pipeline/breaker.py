"""Breaker samples: every run of an engine's handler counts for or against its circuit breaker.

The caller's own mistakes (PermanentError: invalid request, unknown capability, poison) say
nothing about the engine and do not count; neither do requests that never ran. Each opening and
closing is logged and counted (`agent_breaker_transitions_total`), once, by the worker whose
outcome caused it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import structlog

from agents.breaker import Transition
from agents.connections import breakers, redis_client
from agents.errors import PermanentError
from agents.recorder import count
from agents.statuses import FAILED, RETRYING, SUCCESS
from agents.telemetry.catalog import BREAKER_TRANSITIONS
from agents.telemetry.tally import Tally
from tasks.pipeline.delivery import Outcome
from tasks.pipeline.hook import Hook

log = structlog.get_logger("agents.breaker")
_SAMPLED = frozenset({SUCCESS, FAILED, RETRYING})
# How a transition is logged and labelled.
_EVENTS = {Transition.OPENED: ("breaker_opened", "open"), Transition.CLOSED: ("breaker_closed", "closed")}


class BreakerHook(Hook):
    """Records each engine's samples of a batch in one round trip."""

    def after_process(self, outcomes: Sequence[Outcome]) -> None:
        samples: dict[str, list[tuple[bool, float]]] = defaultdict(list)
        for o in outcomes:
            engine = o.delivery.engine
            if engine is None or o.runtime is None or o.status not in _SAMPLED:
                continue
            if isinstance(o.error, PermanentError):
                continue
            samples[engine].append((o.ok, o.runtime * 1000))
        tally = Tally()
        for engine, engine_samples in samples.items():
            for transition in breakers().record_many(engine, engine_samples):
                if transition in _EVENTS:
                    event, to = _EVENTS[transition]
                    (log.warning if to == "open" else log.info)(event, engine=engine)
                    tally.inc(BREAKER_TRANSITIONS, (engine, to))
        if tally:
            count(redis_client(), tally)
