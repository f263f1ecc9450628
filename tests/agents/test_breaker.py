"""Circuit breakers shared through a real Redis."""

from __future__ import annotations

import time

import pytest

from agents.breaker import Breakers, breaker_state
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
    assert health.latency_ms == pytest.approx(100)
