"""The platform's figures, read once for whoever needs them: the exporter (agents/exporter) and the
performance engine's snapshots (agents/monitoring/readings.py) read the same things the same way.

From Redis: the pipeline's counters, the registry's engines (queue depth, live workers, breaker),
each worker's last report (active requests, consumed queues, engines, its process tree's CPU and
memory) and heartbeat expiry, the history backlog, Redis's own memory (INFO memory) and the
bridges' lag reports (agents/telemetry/bridge_lag.py). From PostgreSQL: connections by state and
max_connections.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from agents.names import BRIDGE_LAG_KEY, LIVE_WORKERS_KEY, MAINTENANCE_QUEUE, WORKER_ACTIVE_KEY, queue_keys
from agents.recorder import backlog
from agents.registry import Registry, text
from agents.routing.decision import BreakerState, Candidate
from agents.telemetry.bridge_lag import LagReport, freshest
from agents.telemetry.store import read
from agents.telemetry.tally import Decoded
from agents.telemetry.usage import EngineUsage, WorkerUsage, by_engine

BREAKER_VALUES = {BreakerState.CLOSED: 0.0, BreakerState.HALF_OPEN: 1.0, BreakerState.OPEN: 2.0}


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """What a worker's heartbeat last said: requests running, queues consumed, engines served, and
    its process tree's CPU percent and resident bytes (None from workers older than those fields)."""

    active: int = 0
    queues: tuple[str, ...] = ()
    engines: tuple[str, ...] = ()
    cpu_percent: float | None = None
    memory_bytes: int | None = None

    @classmethod
    def parse(cls, raw: bytes | str) -> WorkerReport:
        """A report from its JSON in Redis; an unreadable one counts as empty."""
        try:
            data = json.loads(raw)
            cpu, memory = data.get("cpu_percent"), data.get("memory_bytes")
            return cls(
                int(data.get("active", 0)),
                tuple(str(q) for q in data.get("queues", ())),
                tuple(str(e) for e in data.get("engines", ())),
                None if cpu is None else float(cpu),
                None if memory is None else int(memory),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()


@dataclass(frozen=True, slots=True)
class RedisMemory:
    """INFO memory: bytes used, and maxmemory (0: no limit, then no ratio)."""

    used_bytes: int
    max_bytes: int

    @property
    def ratio(self) -> float | None:
        """used / maxmemory, or None without a limit."""
        return self.used_bytes / self.max_bytes if self.max_bytes > 0 else None


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything read from Redis at `now` (Redis's clock)."""

    now: float
    counted: Decoded
    engines: list[Candidate]
    depths: dict[str, int]  # every queue's depth, the maintenance queue included
    reports: dict[str, WorkerReport]  # by worker hostname
    expiries: dict[str, float]  # by worker hostname: when its newest heartbeat expires
    history_backlog: int
    redis_memory: RedisMemory
    bridge: LagReport | None  # the freshest bridge lag report, None if no bridge ever reported


def read_figures(client: redis.Redis) -> Figures:
    """Read every figure from Redis (a few round trips, none per request)."""
    seconds, micros = client.time()
    engines = Registry(client).candidates()
    depths = {c.queue: c.depth for c in engines}
    if MAINTENANCE_QUEUE not in depths:
        depths[MAINTENANCE_QUEUE] = sum(int(client.llen(key)) for key in queue_keys(MAINTENANCE_QUEUE))
    expiries: dict[str, float] = {}
    heartbeats: list[Any] = client.zrange(LIVE_WORKERS_KEY, 0, -1, withscores=True)
    for raw, expiry in heartbeats:
        host = str(text(raw)).partition("|")[2]
        expiries[host] = max(expiries.get(host, 0.0), float(expiry))
    raw_reports: dict[Any, Any] = client.hgetall(WORKER_ACTIVE_KEY)
    memory: dict[str, Any] = client.info("memory")
    return Figures(
        now=seconds + micros / 1e6,
        counted=read(client),
        engines=engines,
        depths=depths,
        reports={str(text(k)): WorkerReport.parse(v) for k, v in raw_reports.items()},
        expiries=expiries,
        history_backlog=backlog(client),
        redis_memory=RedisMemory(int(memory.get("used_memory", 0)), int(memory.get("maxmemory", 0))),
        bridge=freshest(client.hgetall(BRIDGE_LAG_KEY)),
    )


def worker_usage(figures: Figures) -> list[WorkerUsage]:
    """CPU and memory of each live worker (unexpired heartbeat) whose report carries them."""
    return [
        WorkerUsage(host, report.engines, report.cpu_percent, report.memory_bytes)
        for host, report in sorted(figures.reports.items())
        if report.cpu_percent is not None
        and report.memory_bytes is not None
        and figures.expiries.get(host, 0.0) > figures.now
    ]


def engine_usage(figures: Figures) -> dict[str, EngineUsage]:
    """CPU and memory per engine: its live workers together, and its busiest and largest one."""
    return by_engine(worker_usage(figures))


def forget_workers(client: redis.Redis, hosts: list[str]) -> None:
    """Drop the reports of workers gone for good (a crashed worker's: nobody else removes them)."""
    if hosts:
        client.hdel(WORKER_ACTIVE_KEY, *hosts)


def database_figures() -> tuple[dict[str, int], int]:
    """PostgreSQL connections to the platform's database by state, and max_connections."""
    from db.stats import connection_use

    return connection_use()
