"""Micro-benchmark of the pure routing decision: 50 engines, the capability served by 10."""

from __future__ import annotations

import random
import timeit

from agents.routing.decision import BreakerState, Candidate, decide

ENGINES = 50
SERVING = 10
TARGET_US = 100.0


def candidates() -> list[Candidate]:
    """50 engines with random live figures; every fifth offers 'analysis'."""
    rng = random.Random(7)
    return [
        Candidate(
            engine=f"engine_{i}",
            capabilities=frozenset({"analysis" if i % (ENGINES // SERVING) == 0 else f"cap_{i}", "shared"}),
            queue_size=1000,
            live_workers=rng.randint(1, 3),
            depth=rng.randint(0, 900),
            breaker=rng.choice([BreakerState.CLOSED, BreakerState.CLOSED, BreakerState.HALF_OPEN]),
            success_rate=rng.random(),
            latency_ms=rng.uniform(1, 500),
        )
        for i in range(ENGINES)
    ]


def main() -> float:
    """Print and return microseconds per decision (best of 5 runs)."""
    pool = candidates()
    runs = timeit.repeat(lambda: decide("analysis", pool), number=20_000, repeat=5)
    per_decision_us = min(runs) / 20_000 * 1e6
    verdict = "ok" if per_decision_us < TARGET_US else "SLOWER THAN TARGET"
    print(f"routing decision, {ENGINES} engines ({SERVING} serving): {per_decision_us:.1f} us  [{verdict}]")
    return per_decision_us


if __name__ == "__main__":
    main()
