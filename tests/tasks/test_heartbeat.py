"""A real worker's heartbeat report: the engines it serves and its process tree's CPU and memory
(main process and pool children), as read back by the exporter's and the monitor's sources."""

from __future__ import annotations

import json
import time
from typing import Any

import psutil
import pytest

from agents.names import WORKER_ACTIVE_KEY
from agents.telemetry.sources import read_figures, worker_usage

pytestmark = pytest.mark.servers


def worker_tree(node: str) -> tuple[psutil.Process, list[psutil.Process]]:
    """The worker started with `-n node` and its pool children (forks: the same command line)."""
    (main,) = [
        p for p in psutil.process_iter(["cmdline"])
        if node in (p.info["cmdline"] or []) and node not in (p.parent().cmdline() if p.parent() else [])
    ]  # fmt: skip
    return main, main.children()


def test_the_fleet_reports_its_process_tree(fleet: str, redis_client: Any) -> None:
    # Given the fleet worker (prefork, two pool children) that has beaten a few times
    main, children = worker_tree(fleet)
    assert children  # the prefork pool (two processes, unless a test resized it)
    time.sleep(1.5)
    # When its report is read back
    report = json.loads(redis_client.hget(WORKER_ACTIVE_KEY, fleet))
    # Then it names its engines and measures its main process and its pool children
    assert {"analysis", "intelligence", "counter"} <= set(report["engines"])
    assert report["cpu_percent"] >= 0.0
    resident = main.memory_info().rss + sum(child.memory_info().rss for child in children)
    assert report["memory_bytes"] == pytest.approx(resident, rel=0.2)
    assert report["memory_bytes"] > main.memory_info().rss * 1.2  # the children are in it
    (usage,) = [w for w in worker_usage(read_figures(redis_client)) if w.hostname == fleet]
    assert usage.memory_bytes == report["memory_bytes"] and usage.engines == tuple(sorted(report["engines"]))
