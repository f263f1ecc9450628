"""What `agents exporter` serves, read at scrape time (agents/telemetry/sources.py, the module the
performance engine's snapshots read too): the pipeline's counters from Redis, queue depths,
heartbeats and breakers from the registry, live workers' CPU and memory from their heartbeat
reports, Redis's memory, and PostgreSQL's connection use. The bridge's lag is not served here: the
bridge serves `agents_bridge_lag` itself.

Every name, help text and label set comes from agents/telemetry/catalog.py. A server that cannot
be reached costs its own series (and `agent_redis_up` / `agent_db_up` say 0), not the scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import redis
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from agents.telemetry import catalog as m
from agents.telemetry.sources import (
    BREAKER_VALUES,
    Figures,
    database_figures,
    forget_workers,
    read_figures,
    worker_usage,
)

log = structlog.get_logger("agents.exporter")


def family(metric: m.Metric) -> Any:
    """An empty prometheus_client family for a catalog entry."""
    if metric.kind == "counter":
        return CounterMetricFamily(metric.name, metric.help, labels=metric.labels)
    if metric.kind == "histogram":
        return HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
    return GaugeMetricFamily(metric.name, metric.help, labels=metric.labels)


class WorkerMemory:
    """Workers seen lately. A worker that stopped cleanly (it withdrew its heartbeat and its
    `workers:active` entry) goes at once; one that vanished (crash, kill) reports 0 for
    `offline_after` seconds, then its series go: bounded cardinality, pod names do not pile up."""

    def __init__(self, offline_after: float) -> None:
        self.offline_after = offline_after
        self.last_seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def update(
        self, expiries: dict[str, float], reporting: set[str], now: float
    ) -> tuple[dict[str, bool], set[str]]:
        """Hostname -> up, given each heartbeat's expiry (Redis clock), the hosts with an active
        count, and now; plus the hosts forgotten on this call."""
        with self._lock:  # scrapes run in parallel threads
            for host, expiry in expiries.items():
                self.last_seen[host] = max(self.last_seen.get(host, 0.0), min(expiry, now))
            gone = {
                host
                for host, seen in self.last_seen.items()
                if now - seen > self.offline_after or (host not in expiries and host not in reporting)
            }
            for host in gone:
                del self.last_seen[host]
            return {host: expiries.get(host, 0.0) > now for host in self.last_seen}, gone


class PlatformCollector(Collector):
    """A prometheus_client collector over the platform's Redis (and optionally PostgreSQL)."""

    def __init__(self, client: redis.Redis, offline_after: float, database: bool = True) -> None:
        self.client = client
        self.workers = WorkerMemory(offline_after)
        self.database = database

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the registry would otherwise call collect() at registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Every series, read now."""
        redis_up = GaugeMetricFamily(m.REDIS_UP.name, m.REDIS_UP.help)
        try:
            families = list(self._from_redis())
        except redis.RedisError as exc:
            log.warning("exporter_redis_unreachable", error=repr(exc))
            families = []
        redis_up.add_metric([], 1.0 if families else 0.0)
        yield redis_up
        yield from families
        if self.database:
            yield from self._from_postgres()

    def _from_redis(self) -> Iterator[Metric]:
        figures = read_figures(self.client)
        yield from _counted(figures.counted)
        agent_queue, breaker = family(m.AGENT_QUEUE_SIZE), family(m.AGENT_BREAKER_STATE)
        for candidate in figures.engines:
            agent_queue.add_metric([candidate.engine], float(candidate.depth))
            breaker.add_metric([candidate.engine], BREAKER_VALUES[candidate.breaker])
        up, _ = self.workers.update(figures.expiries, set(figures.reports), figures.now)
        forget_workers(self.client, [h for h in figures.reports if h not in up and h not in figures.expiries])
        # Consumers per queue from what each live worker says it consumes (maintenance too).
        consuming: dict[str, int] = dict.fromkeys(figures.depths, 0)
        for host, report in figures.reports.items():
            if up.get(host):
                for queue in report.queues:
                    consuming[queue] = consuming.get(queue, 0) + 1
        queue_length, consumers = family(m.QUEUE_LENGTH), family(m.ACTIVE_CONSUMERS)
        for queue in sorted(figures.depths):
            queue_length.add_metric([queue], float(figures.depths[queue]))
        for queue in sorted(consuming):
            consumers.add_metric([queue], float(consuming[queue]))
        yield from (queue_length, agent_queue, consumers, breaker)
        worker_up, tasks_active = family(m.WORKER_UP), family(m.WORKER_TASKS_ACTIVE)
        for host, is_up in sorted(up.items()):
            worker_up.add_metric([host], 1.0 if is_up else 0.0)
            active = figures.reports[host].active if host in figures.reports else 0
            tasks_active.add_metric([host], float(active) if is_up else 0.0)
        yield worker_up
        yield tasks_active
        history = family(m.HISTORY_BACKLOG)
        history.add_metric([], float(figures.history_backlog))
        yield history
        yield from _usage(figures)

    def _from_postgres(self) -> Iterator[Metric]:
        db_up = GaugeMetricFamily(m.DB_UP.name, m.DB_UP.help)
        try:
            by_state, max_connections = database_figures()
        except Exception as exc:  # any driver or server error: say so, keep the other series
            log.warning("exporter_postgres_unreachable", error=repr(exc))
            db_up.add_metric([], 0.0)
            yield db_up
            return
        db_up.add_metric([], 1.0)
        yield db_up
        connections = family(m.DB_CONNECTIONS)
        for state, count in sorted(by_state.items()):
            connections.add_metric([state], float(count))
        yield connections
        maximum = family(m.DB_MAX_CONNECTIONS)
        maximum.add_metric([], float(max_connections))
        yield maximum


def _usage(figures: Figures) -> Iterator[Metric]:
    """Redis's memory, and each live worker's CPU and memory (one series per engine it serves)."""
    memory, ratio = family(m.REDIS_MEMORY), family(m.REDIS_MEMORY_RATIO)
    memory.add_metric([], float(figures.redis_memory.used_bytes))
    if figures.redis_memory.ratio is not None:
        ratio.add_metric([], figures.redis_memory.ratio)
    cpu, resident = family(m.WORKER_CPU), family(m.WORKER_MEMORY)
    for worker in worker_usage(figures):
        for engine in worker.engines:
            cpu.add_metric([worker.hostname, engine], worker.cpu_percent)
            resident.add_metric([worker.hostname, engine], float(worker.memory_bytes))
    yield from (memory, ratio, cpu, resident)


def _counted(decoded: Any) -> Iterator[Metric]:
    """Counter and histogram families of the catalog, from the Redis hash (empty ones too, so
    every name exists from the first scrape)."""
    for metric in m.EXPORTER_METRICS:
        if metric.kind == "counter":
            counter = family(metric)
            for labels, value in sorted(decoded.counters.get(metric.name, {}).items()):
                counter.add_metric(list(labels), value)
            yield counter
        elif metric.kind == "histogram":
            histogram = family(metric)
            for labels, series in sorted(decoded.histograms.get(metric.name, {}).items()):
                histogram.add_metric(list(labels), series.buckets, series.sum)
            yield histogram
