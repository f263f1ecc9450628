"""`agents loadtest` against the real fleet: a short run, every request accounted for."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.servers


@pytest.mark.parametrize("via", ["route", "direct"])
def test_short_run_loses_nothing(fleet: str, via: str) -> None:
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
        via,
        "--json",
        "--drain-timeout",
        "60",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert (report["sent"], report["succeeded"], report["lost"]) == (40, 40, 0)
    assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["p99_ms"] <= report["max_ms"]
