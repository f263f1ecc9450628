"""What the agents dashboard shows: its rows of panels, each panel's PromQL queries and legends.
build_dashboard.py (beside it) turns them into Grafana JSON. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RATE = "$__rate_interval"
WORKERS = '{job="agents-workers"}'


@dataclass
class Panel:
    """One panel: its queries as (expr, legend) pairs, unit, width and panel-type specifics."""

    title: str
    description: str
    queries: list[tuple[str, str]]
    unit: str = "short"
    width: int = 8
    kind: str = "timeseries"
    threshold: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def quantiles(metric: str, by: str, levels: tuple[float, ...], legend: str) -> list[tuple[str, str]]:
    """histogram_quantile queries of one histogram, one per level; `$q` in the legend is p50, p95..."""
    group = ", ".join(["le", *filter(None, [by])])
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RATE}])))",
            legend.replace("$q", f"p{round(q * 100)}"),
        )
        for q in levels
    ]


def per_engine(status: str) -> str:
    """Requests per second that ended in `status`, per engine."""
    return f'sum by (agent_name) (rate(agent_tasks_total{{status="{status}"}}[{RATE}]))'


BREAKER_STATES = {
    "mappings": [
        {
            "type": "value",
            "options": {
                "0": {"text": "closed", "color": "green", "index": 0},
                "1": {"text": "half-open", "color": "yellow", "index": 1},
                "2": {"text": "open", "color": "red", "index": 2},
            },
        }
    ],
}

ROWS: list[tuple[str, list[Panel]]] = [
    (
        "Tasks",
        [
            Panel(
                "Task success rate per engine",
                "Requests that ended in `success` per second (agent_tasks_total).",
                [(per_engine("success"), "{{agent_name}}")],
                unit="reqps",
            ),
            Panel(
                "Task failure rate per engine",
                "Requests that ended in `failed` per second (agent_tasks_total).",
                [(per_engine("failed"), "{{agent_name}}")],
                unit="reqps",
            ),
            Panel(
                "Failure ratio per engine",
                "failed / (success + failed) over 5m: alert TaskFailureRate fires above 10% for 10m.",
                [
                    (
                        'sum by (agent_name) (rate(agent_tasks_total{status="failed"}[5m]))'
                        ' / sum by (agent_name) (rate(agent_tasks_total{status=~"success|failed"}[5m]))',
                        "{{agent_name}}",
                    )
                ],
                unit="percentunit",
                threshold=0.1,
            ),
            Panel(
                "Task runtime p95 per queue",
                "95th percentile of the seconds a request ran (celery_task_runtime).",
                quantiles("celery_task_runtime", "queue_name", (0.95,), "{{queue_name}}"),
                unit="s",
                width=12,
            ),
            Panel(
                "End-to-end latency",
                "Seconds from a request's creation to its outcome, all engines (agent_end_to_end_seconds).",
                quantiles("agent_end_to_end_seconds", "", (0.5, 0.95, 0.99), "$q"),
                unit="s",
                width=12,
            ),
        ],
    ),
    (
        "Routing",
        [
            Panel(
                "Routing decisions by engine and outcome",
                "Decisions of the router per second (agent_routing_decisions_total).",
                [
                    (
                        f"sum by (agent_name, outcome) (rate(agent_routing_decisions_total[{RATE}]))",
                        "{{agent_name}} {{outcome}}",
                    )
                ],
                unit="reqps",
            ),
            Panel(
                "Routing confidence per engine",
                "Median and 10th percentile of the router's confidence (agent_routing_confidence).",
                quantiles("agent_routing_confidence", "agent_name", (0.5, 0.1), "{{agent_name}} $q"),
                unit="percentunit",
            ),
            Panel(
                "Routing latency",
                "Seconds the router spent deciding per request (agent_routing_latency_seconds).",
                quantiles("agent_routing_latency_seconds", "", (0.5, 0.95), "$q"),
                unit="s",
            ),
        ],
    ),
    (
        "Queues and workers",
        [
            Panel(
                "Queue depth",
                "Messages waiting per queue (celery_queue_length): alert HighTaskQueueDepth above 1000.",
                [("max by (queue_name) (celery_queue_length)", "{{queue_name}}")],
                width=6,
                threshold=1000,
            ),
            Panel(
                "Consumers per queue",
                "Live workers consuming each queue (celery_active_consumer_count).",
                [("max by (queue_name) (celery_active_consumer_count)", "{{queue_name}}")],
                width=6,
            ),
            Panel(
                "Workers up",
                "Workers heartbeating (exporter), ready (own /metrics), pods scraped, online in Flower.",
                [
                    ("sum(celery_worker_up)", "heartbeating"),
                    ("sum(agent_worker_ready)", "ready"),
                    (f"sum(up{WORKERS})", "pods scraped"),
                    ("sum(flower_worker_online)", "online in Flower"),
                ],
                width=6,
                kind="stat",
            ),
            Panel(
                "Circuit breakers",
                "State of each engine's breaker (agent_breaker_state): 0 closed, 1 half-open, 2 open.",
                [("max by (agent_name) (agent_breaker_state)", "{{agent_name}}")],
                width=6,
                kind="state-timeline",
                extra=BREAKER_STATES,
            ),
        ],
    ),
    (
        "Worker resources",
        [
            Panel(
                "Worker CPU",
                "CPU cores used by each worker pod's main process (process_cpu_seconds_total).",
                [(f"sum by (pod) (rate(process_cpu_seconds_total{WORKERS}[{RATE}]))", "{{pod}}")],
                width=12,
            ),
            Panel(
                "Worker resident memory",
                "Resident memory of each worker pod's main process (process_resident_memory_bytes).",
                [(f"sum by (pod) (process_resident_memory_bytes{WORKERS})", "{{pod}}")],
                unit="bytes",
                width=12,
            ),
        ],
    ),
    (
        "PostgreSQL and history",
        [
            Panel(
                "DB query duration p95",
                "95th percentile of the seconds per history batch upsert (agent_db_query_duration_seconds).",
                quantiles("agent_db_query_duration_seconds", "query", (0.95,), "{{query}}"),
                unit="s",
            ),
            Panel(
                "PostgreSQL connections",
                "Connections to the platform's database by state, and max_connections: alert above 80%.",
                [
                    ("sum by (state) (agent_db_connections)", "{{state}}"),
                    ("max(agent_db_max_connections)", "max_connections"),
                ],
            ),
            Panel(
                "History backlog",
                "Lifecycle records in Redis not yet written to PostgreSQL (agent_history_backlog).",
                [("max(agent_history_backlog)", "records")],
                threshold=10000,
            ),
        ],
    ),
    (
        "Engines at work",
        [
            Panel(
                "Alerts, insights and optimization actions",
                "What the performance, analysis and optimization engines did in the last 5 minutes "
                "(agent_alerts_total, agent_insights_total, agent_optimization_actions_total).",
                [
                    (
                        'sum by (alert, agent_name) (increase(agent_alerts_total{state="fired"}[5m]))',
                        "alert {{alert}} {{agent_name}}",
                    ),
                    (
                        "sum by (kind, agent_name) (increase(agent_insights_total[5m]))",
                        "insight {{kind}} {{agent_name}}",
                    ),
                    (
                        "sum by (action, agent_name, outcome) "
                        "(increase(agent_optimization_actions_total[5m]))",
                        "{{action}} {{agent_name}} {{outcome}}",
                    ),
                ],
                width=12,
            ),
            Panel(
                "Breaker transitions and routing trials",
                "Breakers opened and closed in the last 5 minutes (agent_breaker_transitions_total), and "
                "requests tried on an engine other than the best (outcome explored).",
                [
                    (
                        "sum by (agent_name, to) (increase(agent_breaker_transitions_total[5m]))",
                        "breaker {{agent_name}} {{to}}",
                    ),
                    (
                        "sum by (agent_name) "
                        '(increase(agent_routing_decisions_total{outcome="explored"}[5m]))',
                        "trials {{agent_name}}",
                    ),
                ],
                width=12,
            ),
        ],
    ),
    (
        "NATS bridge",
        [
            Panel(
                "NATS throughput",
                "Events fetched from JetStream, tasks published and events dead-lettered per second.",
                [
                    (f"sum(rate(agents_bridge_events_total[{RATE}]))", "fetched"),
                    (f"sum(rate(agents_bridge_published_total[{RATE}]))", "published"),
                    (f"sum by (kind) (rate(agents_bridge_dead_lettered_total[{RATE}]))", "dead {{kind}}"),
                ],
                unit="ops",
                width=12,
            ),
            Panel(
                "Bridge lag",
                "Events in the stream not yet delivered to the bridge (agents_bridge_lag): alert above 1000.",
                [("max(agents_bridge_lag)", "lag")],
                width=12,
                threshold=1000,
            ),
        ],
    ),
]
