"""A worker that would run the monitor refuses bad MONITORING_THRESHOLDS / OPTIMIZATION_RULES files
at start, naming the file, line and field; a worker of another queue does not care."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, spawn_worker, stop_worker

pytestmark = pytest.mark.servers

BAD_THRESHOLDS = """\
thresholds:
  - name: Deep
    metric: queue_depth
    comparison: ">"
    value: 10
  - name: Typo
    metric: queue_dept
    comparison: ">"
    value: 1
"""
BAD_RULES = """\
rules:
  - name: Grow
    metric: queue_depth
    comparison: ">"
    value: 10
    action: pool_explode
"""


def start_worker(queues: str, node: str, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", queues, "-n", node, "-P", "solo"]
    return subprocess.run(argv, cwd=ROOT, env=os.environ | env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("setting", "content", "where"),
    [
        ("MONITORING_THRESHOLDS", BAD_THRESHOLDS, ":7: thresholds.1.metric: Input should be 'queue_depth'"),
        ("OPTIMIZATION_RULES", BAD_RULES, ":6: rules.0.action: Input should be 'pool_grow'"),
    ],
)
def test_a_maintenance_worker_with_a_bad_file_exits_naming_line_and_field(
    redis_server: Any, tmp_path: Path, setting: str, content: str, where: str
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(content)
    done = start_worker("maintenance", f"refused-{os.getpid()}@localhost", **{setting: str(bad)})
    assert done.returncode == os.EX_CONFIG, done.stdout + done.stderr
    assert f"refused-{os.getpid()}@localhost refused to start:" in done.stderr
    assert f"{setting} is refused:" in done.stderr
    assert f"{bad}{where}" in done.stderr, done.stderr


def test_a_worker_that_does_not_run_the_monitor_starts_anyway(fleet: str, tmp_path: Path) -> None:
    from agents.connections import registry

    bad = tmp_path / "bad.yml"
    bad.write_text(BAD_THRESHOLDS)
    node = f"unbothered-{os.getpid()}@localhost"
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks",
        "worker",
        "-Q",
        "counter",
        "-n",
        node,
        "-P",
        "solo",
    ]
    process = spawn_worker(argv, "unbothered", MONITORING_THRESHOLDS=str(bad))
    try:
        deadline = time.monotonic() + 30
        while node not in registry().live_workers().get("counter", []):
            assert process.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.2)
    finally:
        stop_worker(process)
