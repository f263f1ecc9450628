"""Routing decisions for one batch: the shared `decide`, with live figures read once per capability.

A decision is reused while the chosen queue has room (re-checked every REDECIDE_EVERY events),
and the batch's own messages count towards queue depth, so a batch cannot overfill a queue.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable

from agents.errors import AgentsError
from agents.models import Decision
from agents.routing.decision import Candidate, decide
from agents.routing.live import candidates_for

# Scores move with queue depth; deciding again now and then lets a second engine take a share.
REDECIDE_EVERY = 50


class BatchRouting:
    """Decides engines for the events of one batch (create one per batch)."""

    def __init__(self, fetch: Callable[[str], list[Candidate]] = candidates_for) -> None:
        self._fetch = fetch
        self._candidates: dict[str, list[Candidate]] = {}
        self._assigned: Counter[str] = Counter()
        self._cached: dict[tuple[str, str | None], tuple[Decision, int]] = {}
        self._refused: dict[tuple[str, str | None], AgentsError] = {}

    def decide(self, capability: str, engine: str | None = None) -> Decision:
        """The engine for one more request of `capability` (only `engine` when pinned), or raise."""
        key = (capability, engine)
        if key in self._refused:  # nothing this batch does can make room or revive a worker
            raise self._refused[key]
        decision, uses = self._cached.get(key, (None, 0))
        if decision is None or uses <= 0:
            try:
                decision, uses = self._decide_now(capability, engine)
            except AgentsError as exc:
                self._refused[key] = exc
                raise
        self._cached[key] = (decision, uses - 1)
        self._assigned[decision.engine] += 1
        return decision

    def _decide_now(self, capability: str, engine: str | None) -> tuple[Decision, int]:
        found = self._candidates.get(capability)
        if found is None:
            found = self._candidates[capability] = self._fetch(capability)
        pool = [
            dataclasses.replace(c, depth=c.depth + self._assigned[c.engine])
            for c in found
            if engine is None or c.engine == engine
        ]
        decision = decide(capability, pool)
        chosen = next(c for c in pool if c.engine == decision.engine)
        return decision, min(REDECIDE_EVERY, chosen.queue_size - chosen.depth)
