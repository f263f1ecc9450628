"""The bridges' lag reports in Redis: stamped with Redis's clock, the freshest wins, a clean stop
withdraws, reports of long-dead bridges are forgotten, and the monitor's reading ages them."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from agents.monitoring.readings import take_reading
from agents.monitoring.snapshot import measurements
from agents.names import BRIDGE_LAG_KEY
from agents.telemetry.bridge_lag import FORGET_AFTER_SECONDS, LagReport, freshest, report, withdraw

pytestmark = pytest.mark.servers


def redis_now(client: Any) -> float:
    seconds, micros = client.time()
    return float(seconds + micros / 1e6)


def test_a_report_is_stamped_by_redis_and_withdrawn_on_a_clean_stop(redis_client: Any) -> None:
    before = redis_now(redis_client)
    report(redis_client, "bridge-a:1", 42, paused=False)
    latest = freshest(redis_client.hgetall(BRIDGE_LAG_KEY))
    assert latest is not None and (latest.lag, latest.paused) == (42, False)
    assert before <= latest.at <= redis_now(redis_client)
    withdraw(redis_client, "bridge-a:1")
    assert freshest(redis_client.hgetall(BRIDGE_LAG_KEY)) is None


def test_the_freshest_report_wins_and_long_dead_bridges_are_forgotten(redis_client: Any) -> None:
    now = redis_now(redis_client)
    old = {"lag": 9, "paused": False, "at": now - FORGET_AFTER_SECONDS - 5}
    redis_client.hset(BRIDGE_LAG_KEY, "dead-yesterday:1", json.dumps(old))
    redis_client.hset(BRIDGE_LAG_KEY, "crashed:2", json.dumps({"lag": 5, "paused": False, "at": now - 60}))
    redis_client.hset(BRIDGE_LAG_KEY, "damaged:3", "{not json")
    report(redis_client, "alive:4", 7, paused=True)
    kept = {k.decode() for k in redis_client.hkeys(BRIDGE_LAG_KEY)}
    assert kept == {"crashed:2", "alive:4"}  # the damaged and the day-old report went
    latest = freshest(redis_client.hgetall(BRIDGE_LAG_KEY))
    assert latest is not None and (latest.lag, latest.paused) == (7, True)
    assert freshest({b"x": b"{not json", b"y": b'{"lag": 1}'}) is None
    assert freshest({"z": '{"lag": 3, "paused": false, "at": 12.5}'}) == LagReport(3, False, 12.5)


def test_the_reading_ages_the_report_by_redis_clock_and_a_stale_one_measures_no_lag(
    redis_client: Any,
) -> None:
    report(redis_client, "bridge-b:1", 1200, paused=False)
    time.sleep(0.2)
    platform = measurements(None, take_reading(redis_client, database=False))["platform"]
    assert platform["bridge_lag"] == 1200.0
    assert 0.2 <= platform["bridge_report_age_seconds"] < 5
    # The bridge died 40 s ago: its last word stays in Redis, and ages.
    stale = {"lag": 0, "paused": False, "at": redis_now(redis_client) - 40}
    redis_client.hset(BRIDGE_LAG_KEY, "bridge-b:1", json.dumps(stale))
    platform = measurements(None, take_reading(redis_client, database=False))["platform"]
    assert "bridge_lag" not in platform  # unknown, not "no lag"
    assert 40 <= platform["bridge_report_age_seconds"] < 45
