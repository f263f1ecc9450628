"""Worker reports as the heartbeat writes them, what a damaged or older one reads as, and the
figures read from the real Redis: its memory, live workers' CPU and memory."""

from __future__ import annotations

from typing import Any

import pytest

from agents.telemetry.sources import WorkerReport, engine_usage, read_figures, worker_usage
from agents.telemetry.usage import WorkerUsage


def test_a_report_reads_back_and_a_damaged_one_is_empty() -> None:
    report = WorkerReport.parse(b'{"active": 3, "queues": ["intelligence", "maintenance"]}')
    assert report == WorkerReport(3, ("intelligence", "maintenance"))
    assert WorkerReport.parse("not json") == WorkerReport() == WorkerReport.parse("[1, 2]")


def test_a_report_with_usage_reads_back_and_an_older_one_has_none() -> None:
    raw = '{"active": 1, "queues": ["a"], "engines": ["analysis"], "cpu_percent": 12.5, "memory_bytes": 9}'
    assert WorkerReport.parse(raw) == WorkerReport(1, ("a",), ("analysis",), 12.5, 9)
    older = WorkerReport.parse('{"active": 1, "queues": ["analysis"]}')
    assert older.engines == () and older.cpu_percent is None and older.memory_bytes is None


@pytest.mark.servers
def test_redis_memory_is_read_from_the_real_redis_with_a_ratio_under_maxmemory(redis_client: Any) -> None:
    figures = read_figures(redis_client)
    assert figures.redis_memory.used_bytes > 100_000  # an empty Redis 7 already uses ~1 MB
    assert figures.redis_memory.max_bytes == 0 and figures.redis_memory.ratio is None  # no limit: no ratio
    previous = redis_client.config_get("maxmemory")["maxmemory"]
    redis_client.config_set("maxmemory", 2**30)
    try:
        memory = read_figures(redis_client).redis_memory
        assert memory.max_bytes == 2**30 and memory.ratio == memory.used_bytes / 2**30
    finally:
        redis_client.config_set("maxmemory", previous)


@pytest.mark.servers
def test_only_live_workers_with_figures_count_per_worker_and_per_engine(redis_client: Any) -> None:
    from agents.connections import registry
    from agents.names import ENGINE_INFO_KEY, WORKER_ACTIVE_KEY
    from agents.registry import EngineCard

    card = EngineCard(engine="usage_probe", capabilities=["probe"], queue_size=10, concurrency=1)
    hosts = ["probe@live-1", "probe@live-2", "probe@old", "probe@gone"]
    try:
        for host in hosts[:3]:
            registry().announce(host, [card], ttl_seconds=30)
        registry().announce(hosts[3], [card], ttl_seconds=-1)  # its heartbeat has expired
        registry().report_active(hosts[0], 0, ["usage_probe"], ["usage_probe"], 150.0, 300)
        registry().report_active(hosts[1], 2, ["usage_probe"], ["usage_probe"], 50.04, 700)
        registry().report_active(hosts[2], 0, ["usage_probe"])  # a worker from before these fields
        registry().report_active(hosts[3], 0, ["usage_probe"], ["usage_probe"], 10.0, 10_000)
        figures = read_figures(redis_client)
        probes = [w for w in worker_usage(figures) if w.hostname.startswith("probe@")]
        assert probes == [
            WorkerUsage("probe@live-1", ("usage_probe",), 150.0, 300),
            WorkerUsage("probe@live-2", ("usage_probe",), 50.0, 700),  # rounded to 0.1 %
        ]
        usage = engine_usage(figures)["usage_probe"]
        assert (usage.workers, usage.cpu_percent, usage.memory_bytes) == (2, 200.0, 1000)
        assert (usage.max_worker_cpu_percent, usage.max_worker_memory_bytes) == (150.0, 700)
    finally:
        for host in hosts:
            registry().withdraw(host, ["usage_probe"])
        redis_client.hdel(WORKER_ACTIVE_KEY, *hosts)
        redis_client.hdel(ENGINE_INFO_KEY, "usage_probe")  # no phantom engine for the other tests
