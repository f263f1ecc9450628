"""The router learns from outcomes, on real workers: a failing engine loses its traffic to a healthy
engine with the same capability, and wins it back once it recovers (agents/routing/decision.py)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from agents.names import faults_key
from agents.routing.decision import BreakerState
from agents.statuses import SUCCESS
from agents.telemetry import store
from agents.telemetry.catalog import BREAKER_TRANSITIONS
from tests.conftest import wait_for_history

pytestmark = pytest.mark.servers
ROUND = 150  # routed requests per round; about 2% of them try the engine that is not the best
# Breaker reset (30 s) plus about two half-lives of the outcome averages (agents/breaker.py).
RECOVERY_DEADLINE_SECONDS = 180.0


def send_round() -> Counter[str]:
    """Route one round of `demo` requests; how many each engine ran (and how many failed)."""
    from tasks import route

    ids = [route.delay({"capability": "demo", "payload": {}}).id for _ in range(ROUND)]
    rows = wait_for_history(ids, timeout=60)
    ran = Counter(str(row["engine"]) for row in rows.values())
    ran.update(f"{row['engine']} failed" for row in rows.values() if row["status"] != SUCCESS)
    return ran


@pytest.mark.timeout(RECOVERY_DEADLINE_SECONDS + 180)
def test_failing_engine_loses_traffic_and_wins_it_back(demo_workers: tuple[str, str], redis_client) -> None:
    blue, green = demo_workers
    redis_client.hset(faults_key(green), mapping={"fail_ratio": 1.0})
    rounds = [send_round() for _ in range(3)]
    assert rounds[0][f"{green} failed"] > 0, rounds  # it had traffic, and failed it
    assert rounds[-1][green] <= ROUND * 0.1, rounds  # then it lost it: only trials reach it
    assert rounds[-1][blue] >= ROUND * 0.9, rounds
    # Every request it took failed, so its breaker opened, and that is counted for Prometheus.
    transitions = store.read(redis_client).counters.get(BREAKER_TRANSITIONS.name, {})
    assert transitions.get((green, BreakerState.OPEN.value), 0) >= 1, transitions

    # The trials succeed, its averages recover, and it takes a real share again. How soon depends
    # on time as much as on traffic (the breaker's reset timeout, the averages' half-life), so the
    # test gives it a deadline in seconds rather than a number of rounds.
    redis_client.delete(faults_key(green))
    recovered: list[tuple[float, Counter[str]]] = []
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_DEADLINE_SECONDS:
        recovered.append((round(time.monotonic() - started, 1), send_round()))
        if recovered[-1][1][green] >= ROUND * 0.3:
            break
    assert recovered[-1][1][green] >= ROUND * 0.3, recovered
    assert recovered[-1][1][f"{green} failed"] == 0, recovered
