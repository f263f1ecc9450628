"""The celery CLI an operator uses, against the real fleet worker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.servers


def celery(*args: str) -> str:
    command = [sys.executable, "-m", "celery", "-A", "tasks", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_inspect_ping_answers(fleet: str) -> None:
    assert "pong" in celery("inspect", "ping", "-d", fleet, "--timeout", "5")


def test_inspect_active_queues_lists_engine_queues(fleet: str) -> None:
    replies = json.loads(celery("inspect", "active_queues", "-d", fleet, "--timeout", "5", "--json"))
    queues = {queue["name"] for queue in replies[fleet]}
    assert {"intelligence", "performance", "optimization", "analysis", "flaky"} <= queues


def test_control_rate_limit_and_pool_grow(fleet: str) -> None:
    assert "new rate limit set successfully" in celery(
        "control", "rate_limit", "agents.engine.analysis", "100/s", "-d", fleet, "--timeout", "5"
    )
    assert "pool will grow" in celery("control", "pool_grow", "1", "-d", fleet, "--timeout", "5")
    celery("control", "pool_shrink", "1", "-d", fleet, "--timeout", "5")
