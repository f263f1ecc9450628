"""Circuit breakers shared through a real Redis."""

from __future__ import annotations

import time

import pytest

from agents.breaker import STATS_HALF_LIFE_SECONDS, Breakers, Transition, breaker_state, forgotten
from agents.routing.decision import BreakerState
from agents.settings import get_settings

pytestmark = pytest.mark.servers


def test_state_follows_open_until() -> None:
    assert breaker_state(None, 100.0) is BreakerState.CLOSED
    assert breaker_state(150.0, 100.0) is BreakerState.OPEN
    assert breaker_state(150.0, 150.0) is BreakerState.HALF_OPEN


def test_consecutive_failures_open_then_success_after_reset_closes(redis_client) -> None:
    breakers = Breakers(redis_client, get_settings())  # threshold 3, reset 2 s (conftest)
    assert not breakers.record("b1", ok=False, latency_ms=5)
    assert not breakers.record("b1", ok=False, latency_ms=5)
    assert breakers.record("b1", ok=False, latency_ms=5)
    assert breakers.health("b1").breaker is BreakerState.OPEN
    time.sleep(2.1)
    assert breakers.health("b1").breaker is BreakerState.HALF_OPEN
    assert not breakers.record("b1", ok=True, latency_ms=5)
    assert breakers.health("b1").breaker is BreakerState.CLOSED


def test_success_resets_the_failure_count(redis_client) -> None:
    breakers = Breakers(redis_client, get_settings())
    for _ in range(5):
        breakers.record("b2", ok=False, latency_ms=1)
        breakers.record("b2", ok=True, latency_ms=1)
    assert breakers.health("b2").breaker is BreakerState.CLOSED


def test_failed_half_open_trial_reopens(redis_client) -> None:
    breakers = Breakers(redis_client, get_settings())
    for _ in range(3):
        breakers.record("b3", ok=False, latency_ms=1)
    time.sleep(2.1)
    assert breakers.record("b3", ok=False, latency_ms=1)
    assert breakers.health("b3").breaker is BreakerState.OPEN


def test_averages_track_recent_outcomes(redis_client) -> None:
    breakers = Breakers(redis_client, get_settings())
    breakers.record("b4", ok=True, latency_ms=100)
    for _ in range(10):
        breakers.record("b4", ok=False, latency_ms=100)
    health = breakers.health("b4")
    assert health.success_rate < 0.2
    assert health.latency_ms == pytest.approx(100, rel=1e-3)  # milliseconds of forgetting


def test_transitions_are_reported_once(redis_client) -> None:
    breakers = Breakers(redis_client, get_settings())  # threshold 3, reset 2 s (conftest)
    assert breakers.record_many("b5", [(False, 1)] * 4) == [
        Transition.STAYED_CLOSED,
        Transition.STAYED_CLOSED,
        Transition.OPENED,
        Transition.STAYED_OPEN,
    ]
    time.sleep(2.1)
    assert breakers.record_many("b5", [(True, 1), (True, 1)]) == [Transition.CLOSED, Transition.STAYED_CLOSED]


def test_forgetting_halves_the_gap_to_a_perfect_record_per_half_life() -> None:
    assert forgotten(0.0, 1000.0, STATS_HALF_LIFE_SECONDS) == (0.5, 500.0)
    assert forgotten(0.2, None, 2 * STATS_HALF_LIFE_SECONDS) == (pytest.approx(0.8), None)
    assert forgotten(0.3, 40.0, 0.0) == (pytest.approx(0.3), 40.0)


def test_old_averages_are_forgotten_before_a_new_outcome_is_mixed_in(redis_client) -> None:
    seconds, micros = redis_client.time()
    an_hour_ago = seconds + micros / 1e6 - STATS_HALF_LIFE_SECONDS
    redis_client.hset("agents:stats:b6", mapping={"success": 0.0, "latency_ms": 1000.0, "at": an_hour_ago})
    health = Breakers(redis_client, get_settings()).health("b6")
    assert health.success_rate == pytest.approx(0.5, abs=1e-3)
    Breakers(redis_client, get_settings()).record("b6", ok=True, latency_ms=100)
    # (1 - (1 - 0) * 0.5) * 0.8 + 1 * 0.2, and 1000 * 0.5 * 0.8 + 100 * 0.2
    health = Breakers(redis_client, get_settings()).health("b6")
    assert health.success_rate == pytest.approx(0.6, abs=1e-3)
    assert health.latency_ms == pytest.approx(420, abs=0.5)
