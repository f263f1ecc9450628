"""`agents loadtest --via nats`: events through JetStream and the bridge, judged by the history."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.agents.bridge.conftest import BridgeRunner
from tests.conftest import ROOT

pytestmark = pytest.mark.servers


def test_short_run_through_the_bridge_loses_nothing(bridge: BridgeRunner) -> None:
    bridge.start()
    command = [
        sys.executable,
        "-m",
        "agents.cli",
        "loadtest",
        "--rate",
        "40",
        "--duration",
        "1",
        "--via",
        "nats",
        "--json",
        "--drain-timeout",
        "60",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert (report["sent"], report["succeeded"], report["lost"]) == (40, 40, 0)
