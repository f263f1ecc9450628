"""Routing decisions for one batch: the shared `decide`, with live figures read once per capability.

A decision is reused while the chosen queue has room (re-checked every REDECIDE_EVERY events),
and the batch's own messages count towards queue depth, so a batch cannot overfill a queue.
A share of requests (ROUTING_EXPLORE_SHARE) goes to another eligible engine than the best, so
the outcomes of an engine that lost its traffic keep coming in and it can win it back.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable

from agents.errors import AgentsError
from agents.models import Decision
from agents.routing.decision import Candidate, decide, explore
from agents.routing.live import candidates_for
from agents.settings import get_settings

# Scores move with queue depth; deciding again now and then lets a second engine take a share.
REDECIDE_EVERY = 50


class BatchRouting:
    """Decides engines for the events of one batch (create one per batch)."""

    def __init__(
        self,
        fetch: Callable[[str], list[Candidate]] = candidates_for,
        explore_share: float | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._fetch = fetch
        self._share = get_settings().routing_explore_share if explore_share is None else explore_share
        self._draw = draw
        self._candidates: dict[str, list[Candidate]] = {}
        self._assigned: Counter[str] = Counter()
        self._cached: dict[tuple[str, str | None], tuple[Decision, int]] = {}
        self._refused: dict[tuple[str, str | None], AgentsError] = {}

    def decide(self, capability: str, engine: str | None = None) -> Decision:
        """The engine for one more request of `capability` (only `engine` when pinned), or raise."""
        key = (capability, engine)
        if key in self._refused:  # nothing this batch does can make room or revive a worker
            raise self._refused[key]
        if self._share and engine is None and self._draw() < self._share:
            trial = self._explore(capability)
            if trial is not None:
                return trial
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

    def _explore(self, capability: str) -> Decision | None:
        """A trial of an engine other than the best, or None when there is no other to try."""
        if len(self._fetched(capability)) < 2:  # most capabilities: one engine, nothing to build
            return None
        pool = self._pool(capability, None)
        try:
            trial = explore(capability, pool, self._draw())
        except AgentsError:  # the ordinary decision raises it, and remembers it
            return None
        if not trial.explored:
            return None
        self._assigned[trial.engine] += 1
        return trial

    def _fetched(self, capability: str) -> list[Candidate]:
        found = self._candidates.get(capability)
        if found is None:
            found = self._candidates[capability] = self._fetch(capability)
        return found

    def _pool(self, capability: str, engine: str | None) -> list[Candidate]:
        found = self._fetched(capability)
        return [
            dataclasses.replace(c, depth=c.depth + self._assigned[c.engine])
            for c in found
            if engine is None or c.engine == engine
        ]

    def _decide_now(self, capability: str, engine: str | None) -> tuple[Decision, int]:
        pool = self._pool(capability, engine)
        decision = decide(capability, pool)
        chosen = next(c for c in pool if c.engine == decision.engine)
        return decision, min(REDECIDE_EVERY, chosen.queue_size - chosen.depth)
