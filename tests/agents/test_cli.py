"""`agents status` and `agents send` against the real fleet."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.servers


def agents(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "agents.cli", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, env=None)


def test_status_lists_engines_workers_and_breakers(fleet: str) -> None:
    done = agents("status")
    assert done.returncode == 0, done.stderr
    for engine in ("intelligence", "performance", "optimization", "analysis", "flaky", "my_engine"):
        assert engine in done.stdout
    assert fleet.split("@")[0] in done.stdout
    assert "closed" in done.stdout


def test_send_prints_the_engine_result(fleet: str) -> None:
    done = agents("send", "analysis", "--payload", '{"data": [1, 2, 3]}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"]["mean"] == 2.0


def test_send_reports_rejections_and_bad_json(fleet: str) -> None:
    rejected = agents("send", "teleport")
    assert rejected.returncode == 1
    assert "UnknownCapability: no engine offers capability 'teleport'" in rejected.stderr
    bad = agents("send", "analysis", "--payload", "{nope")
    assert bad.returncode == 2
    assert "not JSON" in bad.stderr
