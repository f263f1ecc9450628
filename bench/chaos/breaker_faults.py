"""The breaker drill: two engines share a capability; one turns slow, then failing (the demo's
fault mechanism, agents/faults.py), then healthy again. Its breaker must open, routing must move
the traffic to the other engine, and once it recovers the breaker must close and traffic return.
Recovery: from the engine recovering to its breaker closed."""

from __future__ import annotations

import random
import time

from agents.breaker import Breakers
from agents.engines.tunable import BASE_DELAY_MS
from agents.faults import clear_faults, set_faults
from agents.names import queue_keys
from agents.routing.decision import BreakerState
from agents.settings import get_settings
from bench.chaos.fleet import Fleet
from bench.chaos.ledger import Fault, runs_by_engine

BLUE, GREEN = "chaos_blue", "chaos_green"
WORKERS = ("intelligence", BLUE, GREEN)
# Two processes of the tunable engine (40 ms a request) serve ~50 req/s: one engine alone must
# carry the load while the other's breaker is open.
MAX_RATE = 30.0
SLOW_MS = 400.0  # tenfold the tunable engine's 40 ms
SLOW_SECONDS = (3.0, 6.0)
FAILING_SECONDS = (6.0, 12.0)
STEADY_SECONDS = (2.0, 4.0)
OPEN_TIMEOUT_SECONDS = 30.0
CLOSE_TIMEOUT_SECONDS = 80.0
POLL_SECONDS = 0.05


def state(breakers: Breakers, engine: str) -> BreakerState:
    return breakers.health(engine).breaker


def wait_for(check: object, timeout: float) -> float | None:
    """The time `check()` first held, or None if it did not within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return time.time()
        time.sleep(POLL_SECONDS)
    return None


def queued(fleet: Fleet, engine: str) -> int:
    return sum(fleet.redis.llen(key) for key in queue_keys(engine))


def breaker_fault(fleet: Fleet) -> Fault:
    """One slow-failing-healthy cycle of GREEN, checked phase by phase."""
    fleet.wait_consuming(WORKERS)
    breakers = Breakers(fleet.redis, get_settings())
    time.sleep(random.uniform(*STEADY_SECONDS) * fleet.phase_scale)
    set_faults(fleet.redis, GREEN, delay_ms=SLOW_MS, fail_ratio=None)
    time.sleep(random.uniform(*SLOW_SECONDS) * fleet.phase_scale)
    failing_at = time.time()
    # Failing fast (its usual delay), so the backlog the slow phase queued drains at once.
    set_faults(fleet.redis, GREEN, delay_ms=BASE_DELAY_MS, fail_ratio=1.0)
    fault = Fault(failing_at, f"{GREEN} slow {SLOW_MS:g} ms, then failing")
    opened_at = wait_for(lambda: state(breakers, GREEN) is BreakerState.OPEN, OPEN_TIMEOUT_SECONDS)
    if opened_at is None:
        fault.problems.append(f"{GREEN}'s breaker did not open within {OPEN_TIMEOUT_SECONDS:g} s of failing")
        opened_at = time.time()
    # Green's backlog, routed before its breaker opened, runs (and fails) first.
    drained = wait_for(lambda: not queued(fleet, GREEN), OPEN_TIMEOUT_SECONDS) or time.time()
    time.sleep(random.uniform(*FAILING_SECONDS) * fleet.phase_scale)
    # While the breaker was open (or half-open with failing trials), blue took the traffic.
    during = runs_by_engine(fleet.redis, drained + 0.5, time.time())
    if during[BLUE] <= 10 * during[GREEN]:
        fault.problems.append(f"traffic did not move while {GREEN} failed: {dict(during)}")
    fault.at = time.time()  # the recovery is measured from the engine's recovery
    clear_faults(fleet.redis, GREEN)
    closed_at = wait_for(lambda: state(breakers, GREEN) is BreakerState.CLOSED, CLOSE_TIMEOUT_SECONDS)
    if closed_at is None:
        fault.problems.append(f"{GREEN}'s breaker not closed {CLOSE_TIMEOUT_SECONDS:g} s after it recovered")
        return fault
    fault.recovered_at = closed_at
    back = wait_for(lambda: runs_by_engine(fleet.redis, closed_at)[GREEN] >= 5, CLOSE_TIMEOUT_SECONDS)
    if back is None:
        fault.problems.append(f"traffic did not come back to {GREEN} after its breaker closed")
    return fault


def prepare(fleet: Fleet) -> None:
    """Both engines healthy, breakers closed, before the load starts."""
    breakers = Breakers(fleet.redis, get_settings())
    for engine in (BLUE, GREEN):
        clear_faults(fleet.redis, engine)
        breakers.reset(engine)
