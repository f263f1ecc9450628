"""`agents loadtest --via nats`: events through JetStream and the bridge, judged by the history."""

from __future__ import annotations

import pytest

from tests.agents.bridge.conftest import BridgeRunner
from tests.agents.test_loadtest import short_run

pytestmark = pytest.mark.servers


def test_short_run_through_the_bridge_loses_nothing(bridge: BridgeRunner) -> None:
    bridge.start()
    report = short_run("nats")
    assert (report["sent"], report["succeeded"], report["lost"]) == (40, 40, 0)
