"""The platform's figures, read once for whoever needs them: the exporter (agents/exporter) and the
performance engine's snapshots (agents/monitoring/readings.py) read the same things the same way.

From Redis: the pipeline's counters, the registry's engines (queue depth, live workers, breaker),
each worker's last report (active requests, consumed queues) and heartbeat expiry, the history
backlog. From PostgreSQL: connections by state and max_connections.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from agents.names import LIVE_WORKERS_KEY, MAINTENANCE_QUEUE, WORKER_ACTIVE_KEY, queue_keys
from agents.recorder import backlog
from agents.registry import Registry, text
from agents.routing.decision import BreakerState, Candidate
from agents.telemetry.store import read
from agents.telemetry.tally import Decoded

BREAKER_VALUES = {BreakerState.CLOSED: 0.0, BreakerState.HALF_OPEN: 1.0, BreakerState.OPEN: 2.0}


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """What a worker's heartbeat last said: requests running, queues consumed."""

    active: int = 0
    queues: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: bytes | str) -> WorkerReport:
        """A report from its JSON in Redis; an unreadable one counts as empty."""
        try:
            data = json.loads(raw)
            return cls(int(data.get("active", 0)), tuple(str(q) for q in data.get("queues", ())))
        except (ValueError, TypeError, AttributeError):
            return cls()


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
    return Figures(
        now=seconds + micros / 1e6,
        counted=read(client),
        engines=engines,
        depths=depths,
        reports={str(text(k)): WorkerReport.parse(v) for k, v in raw_reports.items()},
        expiries=expiries,
        history_backlog=backlog(client),
    )


def forget_workers(client: redis.Redis, hosts: list[str]) -> None:
    """Drop the reports of workers gone for good (a crashed worker's: nobody else removes them)."""
    if hosts:
        client.hdel(WORKER_ACTIVE_KEY, *hosts)


def database_figures() -> tuple[dict[str, int], int]:
    """PostgreSQL connections to the platform's database by state, and max_connections."""
    from db.stats import connection_use

    return connection_use()
