"""`agents exporter` as Prometheus sees it: a real process scraped over HTTP, checked by promtool."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.exporter.collector import WorkerMemory
from agents.stack.servers import free_port
from agents.telemetry.catalog import EXPORTER_METRICS
from tests.conftest import ROOT, wait_for_history
from tests.system_tools import debian_tool


@pytest.fixture(scope="module")
def exporter(fleet: str) -> Iterator[str]:
    """`agents exporter` on a free port, as `make run` starts it."""
    port = free_port()
    argv = [sys.executable, "-m", "agents.cli", "exporter", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                scrape(url)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[Any, float], series: str, **labels: str) -> float:
    return found.get((series, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.servers
def test_scrape_has_every_catalog_metric_and_counts_a_run(
    exporter: str, fleet: str, redis_client: Any
) -> None:
    from tasks import route

    before = samples(scrape(exporter))
    results = [route.delay({"capability": "analysis", "payload": {"data": [i, 1]}}) for i in range(10)]
    results.append(route.delay({"capability": "teleport"}))
    for result in results:
        result.get(timeout=30, propagate=False)
    wait_for_history([r.id for r in results])
    text = scrape(exporter)
    after = samples(text)
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {metric.name for metric in EXPORTER_METRICS} <= names

    succeeded = "celery_task_succeeded_total"
    labels = {"name": "agents.engine.analysis", "queue_name": "analysis"}
    assert value(after, succeeded, **labels) - value(before, succeeded, **labels) == 10
    agent = {"agent_name": "analysis", "status": "success"}
    assert value(after, "agent_tasks_total", **agent) - value(before, "agent_tasks_total", **agent) == 10
    rejected = {"agent_name": "intelligence", "status": "rejected"}
    assert value(after, "agent_tasks_total", **rejected) - value(before, "agent_tasks_total", **rejected) == 1
    routed = {"agent_name": "analysis", "outcome": "routed"}
    assert value(after, "agent_routing_decisions_total", **routed) >= 10
    assert value(after, "agent_routing_latency_seconds_count") >= 11
    assert value(after, "agent_end_to_end_seconds_count", agent_name="analysis") >= 10
    assert value(after, "celery_task_runtime_count", **labels) >= 10
    # Read at scrape time: the fleet's worker, queues, breakers, PostgreSQL.
    assert value(after, "celery_worker_up", hostname=fleet) == 1
    assert value(after, "celery_active_consumer_count", queue_name="analysis") >= 1
    assert ("agent_queue_size", (("agent_name", "analysis"),)) in after
    assert value(after, "agent_breaker_state", agent_name="analysis") == 0
    assert value(after, "agent_redis_up") == 1 and value(after, "agent_db_up") == 1
    assert value(after, "agent_db_max_connections") >= 1
    assert sum(v for (n, _), v in after.items() if n == "agent_db_connections") >= 1


@pytest.mark.servers
def test_workers_cpu_and_memory_and_redis_memory_are_served(exporter: str, fleet: str) -> None:
    found = samples(scrape(exporter))
    # From the fleet worker's heartbeat report: one series per engine it serves.
    labels = {"hostname": fleet, "agent_name": "analysis"}
    assert value(found, "agent_worker_memory_bytes", **labels) > 50_000_000  # three Python processes
    assert ("agent_worker_cpu_percent", tuple(sorted(labels.items()))) in found
    assert value(found, "agent_worker_memory_bytes", hostname=fleet, agent_name="counter") > 0
    assert value(found, "agent_redis_memory_bytes") > 100_000
    # The session's Redis has no maxmemory: no ratio series (the family is still served, empty).
    assert not [name for name, _ in found if name == "agent_redis_memory_ratio"]


# celery-exporter's name, kept so its dashboards and the celery-mixin alerts work; promtool's
# lint would have a gauge not end in _count. The one finding we accept, on purpose.
ACCEPTED_LINT = {
    'celery_active_consumer_count non-histogram and non-summary metrics should not have "_count" suffix'
}


@pytest.mark.servers
def test_promtool_finds_nothing_to_say_about_the_scrape(exporter: str) -> None:
    promtool = debian_tool("promtool", "prometheus")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=scrape(exporter), capture_output=True, text=True, timeout=60
    )
    findings = {line for line in (checked.stdout + checked.stderr).splitlines() if line.strip()}
    assert findings - ACCEPTED_LINT == set(), findings


def test_a_vanished_worker_reports_down_then_its_series_go() -> None:
    memory = WorkerMemory(offline_after=60)
    both = {"a@pod-1", "b@pod-2"}
    up, _ = memory.update({"a@pod-1": 115.0, "b@pod-2": 115.0}, both, now=100.0)
    assert up == {"a@pod-1": True, "b@pod-2": True}
    # b was killed: its heartbeat expired at 115 and it withdrew nothing. Down, still reported.
    up, _ = memory.update({"a@pod-1": 130.0, "b@pod-2": 115.0}, both, now=120.0)
    assert up == {"a@pod-1": True, "b@pod-2": False}
    # The expired heartbeat was pruned from Redis: still reported down ...
    up, _ = memory.update({"a@pod-1": 160.0}, both, now=150.0)
    assert up == {"a@pod-1": True, "b@pod-2": False}
    # ... until offline_after passed since it was last seen alive (115 + 60).
    assert memory.update({"a@pod-1": 190.0}, both, now=176.0) == ({"a@pod-1": True}, {"b@pod-2"})


def test_a_worker_that_stopped_cleanly_goes_at_once() -> None:
    memory = WorkerMemory(offline_after=60)
    memory.update({"a@pod-1": 115.0, "b@pod-2": 115.0}, {"a@pod-1", "b@pod-2"}, now=100.0)
    # b's warm shutdown withdrew its heartbeat and its active count (Registry.withdraw).
    assert memory.update({"a@pod-1": 120.0}, {"a@pod-1"}, now=105.0) == ({"a@pod-1": True}, {"b@pod-2"})
