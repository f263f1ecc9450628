"""Breaker samples: every run of an engine's handler counts for or against its circuit breaker.

The caller's own mistakes (PermanentError: invalid request, unknown capability, poison) say
nothing about the engine and do not count; neither do requests that never ran.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import structlog

from agents.connections import breakers
from agents.errors import PermanentError
from agents.statuses import FAILED, RETRYING, SUCCESS
from tasks.pipeline.delivery import Outcome
from tasks.pipeline.hook import Hook

log = structlog.get_logger("agents.breaker")
_SAMPLED = frozenset({SUCCESS, FAILED, RETRYING})


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
        for engine, engine_samples in samples.items():
            if breakers().record_many(engine, engine_samples):
                log.warning("breaker_open", engine=engine)
