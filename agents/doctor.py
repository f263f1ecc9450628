"""The seed's daily checks as code: used by `agents doctor` and the beat health report."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from agents.settings import Settings
from agents.statuses import FAILED

# The seed's TaskFailureRate alert fires above 5% failures.
FAILURE_RATIO_LIMIT = 0.05
MIN_TASKS_FOR_RATIO = 20


@dataclass
class Check:
    """One check: passed or not, a one-line detail, and its figures."""

    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def _guard(name: str, probe: Any) -> Check:
    try:
        return probe()
    except Exception as exc:  # any failure of a probe is a failed check, reported with its reason
        return Check(name, False, f"{type(exc).__name__}: {str(exc)[:200]}")


# Celery's `control.ping`: one {node: reply} dict per answering worker.
Ping = Callable[[], list[dict[str, Any]]]


def check_workers(settings: Settings, ping: Ping) -> Check:
    """Every engine of the catalog has a live worker (heartbeat); nodes answer ping; queue depths."""
    from agents.catalog import engines
    from agents.connections import registry

    nodes = sorted(name for reply in ping() for name in reply)
    live = registry().live_workers()
    missing = sorted(set(engines()) - set(live))
    depths = {c.engine: c.depth for c in registry().candidates()}
    detail = f"{len(nodes)} node(s) answering ping, engines with workers: {', '.join(sorted(live)) or 'none'}"
    if missing:
        detail += f"; no worker for {', '.join(missing)}"
    ok = bool(nodes) and not missing
    return Check("workers", ok, detail, {"nodes": nodes, "missing": missing, "queues": depths})


def check_database(settings: Settings) -> Check:
    """PostgreSQL answers; connections per database (pg_stat_activity)."""
    from sqlalchemy import text

    from db.session import get_engine

    with get_engine().connect() as connection:
        rows = connection.execute(
            text("SELECT datname, count(*) FROM pg_stat_activity WHERE datname IS NOT NULL GROUP BY datname")
        )
        per_db = {str(name): int(count) for name, count in rows}
    total = sum(per_db.values())
    return Check("database", True, f"{total} connections", {"connections": per_db})


def check_nats(settings: Settings) -> Check:
    """NATS answers and JetStream is enabled."""
    import nats

    async def probe() -> Check:
        servers = [url.strip() for url in settings.nats_url.split(",") if url.strip()]
        client = await nats.connect(servers, connect_timeout=2, max_reconnect_attempts=0)
        try:
            info = await client.jetstream().account_info()
            version = client.connected_server_version
            return Check("nats", True, f"server {version}, {info.streams} streams", {"streams": info.streams})
        finally:
            await client.close()

    return asyncio.run(probe())


def check_redis(settings: Settings) -> Check:
    """Redis memory and eviction policy; the history backlog waiting for PostgreSQL."""
    from agents.connections import redis_client
    from agents.recorder import backlog

    client = redis_client()
    memory = client.info("memory")
    policy = client.config_get("maxmemory-policy").get("maxmemory-policy", "?")
    pending = backlog(client)
    ok = policy == "noeviction"
    detail = f"used_memory {memory['used_memory_human']}, policy {policy}, history backlog {pending}"
    if not ok:
        detail += " (a broker must not evict: set maxmemory-policy noeviction)"
    return Check("redis", ok, detail, {"used_memory": memory["used_memory"], "history_backlog": pending})


def check_tasks(settings: Settings) -> Check:
    """Task metrics and the most frequent errors of the last hour."""
    from db import history

    hour = timedelta(hours=1)
    counts = history.status_counts(hour)
    errors = history.recent_errors(hour, limit=5)
    total = sum(counts.values())
    failed = counts.get(FAILED, 0)
    ratio = failed / total if total else 0.0
    ok = total < MIN_TASKS_FOR_RATIO or ratio <= FAILURE_RATIO_LIMIT
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no tasks"
    detail += f"; failure ratio {ratio:.1%}"
    return Check("tasks", ok, detail, {"last_hour": counts, "recent_errors": errors})


def check_configuration(settings: Settings) -> Check:
    """MONITORING_THRESHOLDS and OPTIMIZATION_RULES load (a maintenance worker refuses them otherwise)."""
    from agents.monitoring.files import configuration_problems

    problems = configuration_problems(settings)
    files = {
        "thresholds": str(settings.monitoring_thresholds or "default"),
        "rules": str(settings.optimization_rules or "default"),
    }
    detail = f"thresholds {files['thresholds']}, rules {files['rules']}"
    if problems:
        refused = ", ".join(p.split(" ", 1)[0] for p in problems)
        return Check("configuration", False, f"{detail}: {refused} refused", files | {"problems": problems})
    return Check("configuration", True, detail, files)


def run_checks(settings: Settings, ping: Ping) -> list[Check]:
    """All checks, each isolated so one broken server does not hide the others; `ping` asks
    the Celery workers (the caller's app: the CLI's, or the health job's worker)."""
    probes: list[Callable[[], Check]] = [
        lambda: check_workers(settings, ping),
        lambda: check_database(settings),
        lambda: check_nats(settings),
        lambda: check_redis(settings),
        lambda: check_tasks(settings),
        lambda: check_configuration(settings),
    ]
    names = ["workers", "database", "nats", "redis", "tasks", "configuration"]
    return [_guard(name, probe) for name, probe in zip(names, probes, strict=True)]


def as_report(checks: list[Check]) -> dict[str, Any]:
    """JSON-ready report stored by the health job."""
    return {"healthy": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
