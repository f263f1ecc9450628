"""A real `agents bridge` reports its consumer lag to Redis for the monitor, paused or not, and
withdraws the report when it stops cleanly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.bridge.traffic import set_route
from agents.monitoring.readings import take_reading
from agents.monitoring.snapshot import measurements
from agents.names import BRIDGE_LAG_KEY
from agents.telemetry.bridge_lag import LagReport, freshest
from tests.agents.bridge.conftest import BridgeRunner, counts, publish, wait_until

pytestmark = pytest.mark.servers


def lag_report(redis_client: Any) -> LagReport | None:
    return freshest(redis_client.hgetall(BRIDGE_LAG_KEY))


def test_the_bridge_reports_its_lag_paused_then_consuming_then_withdraws_it(
    bridge: BridgeRunner, redis_client: Any
) -> None:
    # Given a bridge that starts with traffic routed to the old system (it consumes nothing)
    process = bridge.start(TRAFFIC_ROUTE="old_system")
    events = [
        ("events.counting.tally", json.dumps({"n": n}).encode(), {"Nats-Msg-Id": f"lag-{n}"})
        for n in range(4)
    ]
    publish(events)
    # Then its report in Redis says 4 events wait and that it is paused
    wait_until(lambda: (r := lag_report(redis_client)) is not None and (r.lag, r.paused) == (4, True),
               what="paused lag report")  # fmt: skip
    platform = measurements(None, take_reading(redis_client, database=False))["platform"]
    assert "bridge_lag" not in platform and platform["bridge_report_age_seconds"] < 5  # paused: not measured
    try:
        # When traffic comes back to the platform, the events run and the lag falls to 0
        set_route(redis_client, "new_system")
        wait_until(lambda: len(counts(redis_client)) == 4, what="events executed")
        wait_until(lambda: (r := lag_report(redis_client)) is not None and (r.lag, r.paused) == (0, False),
                   what="consuming lag report")  # fmt: skip
        assert measurements(None, take_reading(redis_client, database=False))["platform"]["bridge_lag"] == 0.0
    finally:
        set_route(redis_client, None)
    # And a clean stop withdraws the report: a bridge scaled away is not a silent one
    assert bridge.stop(process) == 0
    assert redis_client.hlen(BRIDGE_LAG_KEY) == 0
