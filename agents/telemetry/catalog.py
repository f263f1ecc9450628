"""Every Prometheus metric the platform serves, declared once: name, kind, help and labels.

The exporter builds its series from this list, the alert rules and the Grafana dashboard may only
use names found here (tests/k8s), and label sets are small and bounded: engines, task names,
queues, statuses and exception types, never process ids. Names follow celery-exporter (so its
dashboards and the celery-mixin alerts work) and the seed's `agent_*` metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]

# Seconds. Runtime and end-to-end latency: engines run for milliseconds to minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# Routing takes microseconds to a few milliseconds per request.
ROUTING_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric: its exposed name (counters without the `_total` suffix), kind and labels."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def series(self) -> str:
        """The name a PromQL query uses (counters end in `_total`)."""
        return f"{self.name}_total" if self.kind == "counter" else self.name


TASK = ("name", "queue_name")

# celery-exporter's names. Counted at the source by the pipeline (tasks/pipeline/metrics.py).
TASK_SENT = Metric("celery_task_sent", "counter", "Task messages handed to the broker.", TASK)
TASK_RECEIVED = Metric("celery_task_received", "counter", "Task messages a worker took.", TASK)
TASK_STARTED = Metric("celery_task_started", "counter", "Requests that started to run.", TASK)
TASK_SUCCEEDED = Metric("celery_task_succeeded", "counter", "Requests that succeeded.", TASK)
TASK_FAILED = Metric("celery_task_failed", "counter", "Requests that failed.", (*TASK, "exception"))
TASK_RETRIED = Metric("celery_task_retried", "counter", "Requests that will run again.", TASK)
TASK_REVOKED = Metric("celery_task_revoked", "counter", "Requests revoked or expired.", TASK)
TASK_REJECTED = Metric("celery_task_rejected", "counter", "Requests refused (bad input, no engine).", TASK)
TASK_RUNTIME = Metric("celery_task_runtime", "histogram", "Seconds a request ran.", TASK, LATENCY_BUCKETS)
# Read at scrape time from the registry's heartbeats and the broker's lists.
WORKER_UP = Metric("celery_worker_up", "gauge", "1 while the worker's heartbeat is fresh.", ("hostname",))
WORKER_TASKS_ACTIVE = Metric(
    "celery_worker_tasks_active", "gauge", "Requests the worker is running.", ("hostname",)
)
QUEUE_LENGTH = Metric("celery_queue_length", "gauge", "Messages waiting in the queue.", ("queue_name",))
ACTIVE_CONSUMERS = Metric(
    "celery_active_consumer_count", "gauge", "Live workers consuming the queue.", ("queue_name",)
)

# The seed's names.
AGENT_QUEUE_SIZE = Metric("agent_queue_size", "gauge", "Messages waiting for the engine.", ("agent_name",))
AGENT_TASKS = Metric(
    "agent_tasks", "counter", "Requests by engine and status (as in task_results).", ("agent_name", "status")
)
AGENT_BREAKER_STATE = Metric(
    "agent_breaker_state", "gauge", "Circuit breaker: 0 closed, 1 half-open, 2 open.", ("agent_name",)
)
BREAKER_TRANSITIONS = Metric(
    "agent_breaker_transitions", "counter", "Circuit breaker openings and closings.", ("agent_name", "to")
)
AGENT_END_TO_END = Metric(
    "agent_end_to_end_seconds", "histogram", "Seconds from a request's creation to its outcome.",
    ("agent_name",), LATENCY_BUCKETS,
)  # fmt: skip
ROUTING_DECISIONS = Metric(
    "agent_routing_decisions", "counter", "Routing decisions by engine and outcome.",
    ("agent_name", "outcome"),
)  # fmt: skip
ROUTING_CONFIDENCE = Metric(
    "agent_routing_confidence", "histogram", "Confidence of routing decisions.", ("agent_name",),
    CONFIDENCE_BUCKETS,
)  # fmt: skip
ROUTING_LATENCY = Metric(
    "agent_routing_latency_seconds", "histogram", "Seconds the router spent deciding per request.", (),
    ROUTING_BUCKETS,
)  # fmt: skip
# The engines at work: what the performance, analysis and optimization engines did.
ALERTS = Metric(
    "agent_alerts",
    "counter",
    "Alerts the monitor fired or resolved.",
    ("alert", "agent_name", "severity", "state"),
)
INSIGHTS = Metric(
    "agent_insights", "counter", "Insights the analysis engine stored.", ("kind", "agent_name", "severity")
)
OPTIMIZATION_ACTIONS = Metric(
    "agent_optimization_actions", "counter",
    "Optimization actions by outcome: applied, dry_run, failed, then helped, no_change, hurt, revert.",
    ("action", "agent_name", "outcome"),
)  # fmt: skip
# Counted by the worker that refused them (tasks/refusals.py): raw messages never run, e.g. a
# pickle body (content type not in accept_content), one that does not decode, an unknown task.
MESSAGES_REFUSED = Metric(
    "agent_messages_refused", "counter", "Messages a worker refused without running them, by reason.",
    ("queue_name", "reason"),
)  # fmt: skip
# Counted by the publisher (tasks/transport/replication.py): publishes whose WAIT for
# REDIS_PUBLISH_REPLICAS replicas timed out, so a failover could lose them.
PUBLISHES_UNREPLICATED = Metric(
    "agent_publishes_unreplicated", "counter",
    "Publishes not confirmed by REDIS_PUBLISH_REPLICAS replicas within REDIS_PUBLISH_WAIT_MS.",
    ("queue_name",),
)  # fmt: skip
HISTORY_BACKLOG = Metric("agent_history_backlog", "gauge", "Lifecycle records not yet written to PostgreSQL.")
DB_QUERY_DURATION = Metric(
    "agent_db_query_duration_seconds", "histogram", "Seconds per history batch upsert.", ("query",),
    DB_BUCKETS,
)  # fmt: skip
DB_CONNECTIONS = Metric(
    "agent_db_connections", "gauge", "PostgreSQL connections to the platform's database by state.",
    ("state",),
)  # fmt: skip
DB_MAX_CONNECTIONS = Metric("agent_db_max_connections", "gauge", "PostgreSQL's max_connections.")
DB_UP = Metric("agent_db_up", "gauge", "1 when the exporter reached PostgreSQL on this scrape.")
REDIS_UP = Metric("agent_redis_up", "gauge", "1 when the exporter reached Redis on this scrape.")
REDIS_MEMORY = Metric("agent_redis_memory_bytes", "gauge", "Bytes Redis uses (INFO memory used_memory).")
REDIS_MEMORY_RATIO = Metric(
    "agent_redis_memory_ratio", "gauge", "used_memory / maxmemory (no series without a maxmemory)."
)
# From each live worker's heartbeat report: its process tree (main process and pool children).
WORKER_CPU = Metric(
    "agent_worker_cpu_percent", "gauge", "CPU of the worker's processes, percent of one core.",
    ("hostname", "agent_name"),
)  # fmt: skip
WORKER_MEMORY = Metric(
    "agent_worker_memory_bytes", "gauge", "Resident memory of the worker's processes (sum of RSS).",
    ("hostname", "agent_name"),
)  # fmt: skip

# Served by each worker on HEALTH_PORT (tasks/health_server.py), beside the process collector.
WORKER_READY = Metric(
    "agent_worker_ready", "gauge", "1 while the worker is connected and consumes its queues.", ("engine",)
)

# Served by the bridge (agents/bridge/metrics.py declares them with prometheus_client).
BRIDGE_EVENTS = Metric("agents_bridge_events", "counter", "Events fetched from JetStream.")
BRIDGE_PUBLISHED = Metric("agents_bridge_published", "counter", "Engine tasks published to the broker.")
BRIDGE_DUPLICATES = Metric("agents_bridge_duplicates", "counter", "Events acked without publishing.")
BRIDGE_REDELIVERED = Metric("agents_bridge_redelivered", "counter", "Events delivered more than once.")
BRIDGE_NACKED = Metric("agents_bridge_nacked", "counter", "Events handed back for redelivery.", ("kind",))
BRIDGE_DEAD_LETTERED = Metric(
    "agents_bridge_dead_lettered", "counter", "Events that can never become a task.", ("kind",)
)
BRIDGE_LAG = Metric("agents_bridge_lag", "gauge", "Events in the stream not yet delivered to the bridge.")
BRIDGE_PAUSED = Metric("agents_bridge_paused", "gauge", "1 while TRAFFIC_ROUTE=old_system stops consuming.")

EXPORTER_METRICS = (
    TASK_SENT, TASK_RECEIVED, TASK_STARTED, TASK_SUCCEEDED, TASK_FAILED, TASK_RETRIED, TASK_REVOKED,
    TASK_REJECTED, TASK_RUNTIME, WORKER_UP, WORKER_TASKS_ACTIVE, QUEUE_LENGTH, ACTIVE_CONSUMERS,
    AGENT_QUEUE_SIZE, AGENT_TASKS, AGENT_BREAKER_STATE, BREAKER_TRANSITIONS, AGENT_END_TO_END,
    ROUTING_DECISIONS, ROUTING_CONFIDENCE, ROUTING_LATENCY, ALERTS, INSIGHTS, OPTIMIZATION_ACTIONS,
    HISTORY_BACKLOG, DB_QUERY_DURATION,
    DB_CONNECTIONS, DB_MAX_CONNECTIONS, DB_UP, REDIS_UP, REDIS_MEMORY, REDIS_MEMORY_RATIO, WORKER_CPU,
    WORKER_MEMORY, MESSAGES_REFUSED, PUBLISHES_UNREPLICATED,
)  # fmt: skip
WORKER_METRICS = (WORKER_READY,)
BRIDGE_METRICS = (
    BRIDGE_EVENTS, BRIDGE_PUBLISHED, BRIDGE_DUPLICATES, BRIDGE_REDELIVERED, BRIDGE_NACKED,
    BRIDGE_DEAD_LETTERED, BRIDGE_LAG, BRIDGE_PAUSED,
)  # fmt: skip
ALL_METRICS = EXPORTER_METRICS + WORKER_METRICS + BRIDGE_METRICS


def series_names() -> set[str]:
    """Every series name a query may use, histogram parts included (plus prometheus_client's
    process_* and python_* series that workers, the bridge and the exporter also serve)."""
    names: set[str] = set()
    for metric in ALL_METRICS:
        names.add(metric.series)
        if metric.kind == "histogram":
            names |= {f"{metric.name}_bucket", f"{metric.name}_sum", f"{metric.name}_count"}
    return names
