"""`make chaos`, shortened: a few kills of each kind at random moments under a routed load, on
real servers and workers the drill starts itself, judged by its ledger of sent ids."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.servers


@pytest.mark.timeout(900)
def test_no_request_is_lost_or_run_twice_outside_a_fault_across_kills(tmp_path: Path) -> None:
    out = tmp_path / "verdicts.json"
    scenarios = ["engine-sigkill", "router-sigkill", "pool-sigkill", "engine-sigterm"]
    argv = [
        sys.executable,
        "-m",
        "bench.chaos",
        "--kills-scale",
        "0.1",
        "--dead-seconds",
        "5",
        "--rate",
        "100",
    ]
    argv += [arg for name in scenarios for arg in ("--scenario", name)]
    argv += ["--json", str(out)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.exists(), done.stdout + done.stderr
    verdicts = {v["scenario"]: v for v in json.loads(out.read_text())}
    assert set(verdicts) == set(scenarios)
    for name, verdict in verdicts.items():
        assert verdict["faults"] >= 1, name
        assert verdict["sent"] > 0 and verdict["lost"] == 0, verdict
        assert verdict["duplicated"] == 0 and verdict["leftovers"] == 0, verdict
        assert verdict["succeeded"] + sum(verdict["failed"].values()) == verdict["sent"], verdict
    # A killed worker's messages came back through the heartbeat sweep, well before the
    # visibility timeout (minutes) would have restored them.
    assert verdicts["engine-sigkill"]["recovery_seconds"] is not None
    assert verdicts["engine-sigkill"]["recovery_seconds"] < 60
    assert done.returncode == 0, done.stdout[-3000:]
