"""The routing decision: one pure function shared by the routing task, the bridge and callers.

No I/O here. Callers gather each candidate's live figures (registry, breaker, queue depth,
recent outcomes) and this module only scores them, so it is tested without any server.

Routing learns from outcomes: the success and latency averages (agents/breaker.py) are part of
the score, so a failing or slow engine loses its traffic. To win it back once it recovers it must
be tried again, so a small share of decisions (ROUTING_EXPLORE_SHARE) goes to an engine other
than the best: `explore` picks it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from agents.errors import Backpressure, NoLiveEngine, UnknownCapability
from agents.models import Decision
from agents.names import engine_task_name

# Weights of the score's parts; they add up to 1 so the score doubles as a confidence.
SUCCESS_WEIGHT = 0.5
HEADROOM_WEIGHT = 0.3
LATENCY_WEIGHT = 0.2
# Latency at which the latency part of the score halves.
LATENCY_REFERENCE_MS = 1000.0
# A half-open breaker only gets trial traffic when nothing healthier serves the capability.
HALF_OPEN_PENALTY = 0.5


class BreakerState(StrEnum):
    """Circuit breaker states, as stored in Redis and exported as metrics (0, 1, 2)."""

    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One engine's live figures at the moment of the decision, and where its work goes."""

    engine: str
    capabilities: frozenset[str]
    queue_size: int
    live_workers: int = 0
    depth: int = 0
    breaker: BreakerState = BreakerState.CLOSED
    success_rate: float = 1.0
    latency_ms: float | None = None
    # From the engine's announcement; an engine's queue carries its name unless it says otherwise.
    queue: str = ""
    task: str = ""

    def __post_init__(self) -> None:
        if not self.queue:
            object.__setattr__(self, "queue", self.engine)
        if not self.task:
            object.__setattr__(self, "task", engine_task_name(self.engine))


def score(candidate: Candidate) -> float:
    """Score in 0..1: recent success, queue headroom and latency, damped when half-open."""
    headroom = max(0.0, 1.0 - candidate.depth / candidate.queue_size)
    latency = (
        1.0
        if candidate.latency_ms is None
        else 1.0 / (1.0 + max(candidate.latency_ms, 0.0) / LATENCY_REFERENCE_MS)
    )
    success = min(max(candidate.success_rate, 0.0), 1.0)
    value = SUCCESS_WEIGHT * success + HEADROOM_WEIGHT * headroom + LATENCY_WEIGHT * latency
    if candidate.breaker is BreakerState.HALF_OPEN:
        value *= HALF_OPEN_PENALTY
    return value


def decide(capability: str, candidates: Iterable[Candidate]) -> Decision:
    """Pick the best engine for `capability` or raise the error that says why none fits."""
    serving, eligible = _eligible(capability, candidates)
    # Name as tie-breaker keeps the choice deterministic between equal engines.
    best = max(eligible, key=lambda c: (score(c), c.engine))
    return _decision(best, len(serving))


def explore(capability: str, candidates: Iterable[Candidate], pick: float) -> Decision:
    """An eligible engine other than the best, chosen by `pick` in [0, 1) among the others (the
    best itself when it is alone): the trial that lets a shunned engine show it recovered."""
    serving, eligible = _eligible(capability, candidates)
    ranked = sorted(eligible, key=lambda c: (score(c), c.engine), reverse=True)
    if len(ranked) == 1:
        return _decision(ranked[0], len(serving))
    others = ranked[1:]
    chosen = others[min(int(pick * len(others)), len(others) - 1)]
    return _decision(chosen, len(serving), explored=True)


def _eligible(capability: str, candidates: Iterable[Candidate]) -> tuple[list[Candidate], list[Candidate]]:
    """The engines serving `capability`, and those of them that may take a request now."""
    serving = [c for c in candidates if capability in c.capabilities]
    if not serving:
        raise UnknownCapability(f"no engine offers capability {capability!r}")
    live = [c for c in serving if c.live_workers > 0]
    if not live:
        names = ", ".join(sorted(c.engine for c in serving))
        raise NoLiveEngine(f"capability {capability!r}: no live worker for engine(s) {names}")
    closed = [c for c in live if c.breaker is not BreakerState.OPEN]
    if not closed:
        names = ", ".join(sorted(c.engine for c in live))
        raise NoLiveEngine(f"capability {capability!r}: circuit breaker open for {names}")
    with_room = [c for c in closed if c.depth < c.queue_size]
    if not with_room:
        full = ", ".join(f"{c.engine} {c.depth}/{c.queue_size}" for c in closed)
        raise Backpressure(f"capability {capability!r}: every queue is full ({full})")
    return serving, with_room


def _decision(best: Candidate, serving: int, *, explored: bool = False) -> Decision:
    confidence = round(score(best), 4)
    reason = (
        f"{'exploring: ' if explored else ''}"
        f"{best.engine} of {serving} candidate(s): success {best.success_rate:.0%}, "
        f"queue {best.depth}/{best.queue_size}, "
        f"latency {'n/a' if best.latency_ms is None else f'{best.latency_ms:.0f} ms'}, "
        f"breaker {best.breaker.value}"
    )
    return Decision(
        engine=best.engine, queue=best.queue, task=best.task, confidence=confidence, reason=reason,
        explored=explored,
    )  # fmt: skip
