"""Names declared once: queues, tasks, capabilities and Redis keys. Everything else imports them."""

from __future__ import annotations

# Built-in engines. Each engine's queue carries the engine's name.
INTELLIGENCE = "intelligence"
PERFORMANCE = "performance"
OPTIMIZATION = "optimization"
ANALYSIS = "analysis"
BUILTIN_ENGINES = (INTELLIGENCE, PERFORMANCE, OPTIMIZATION, ANALYSIS)

# The router task lives on the intelligence queue.
ROUTER_QUEUE = INTELLIGENCE
# The router routes a batch per pool call: requests per batch (routing one takes microseconds).
ROUTE_FLUSH_EVERY = 200

# Task names are stable strings so that renaming a module never orphans queued messages.
TASK_NAMESPACE = "agents."
ROUTE_TASK = "agents.route"
# Task name under which the history records NATS events the bridge dead-lettered (no Celery task).
BRIDGE_TASK = "agents.bridge"
ENGINE_TASK_PREFIX = "agents.engine."
PRUNE_REGISTRY_TASK = "agents.maintenance.prune_registry"
REAP_STUCK_TASK = "agents.maintenance.reap_stuck"
RETENTION_TASK = "agents.maintenance.apply_retention"
HEALTH_REPORT_TASK = "agents.maintenance.health_report"
ANALYZE_TASK = "agents.maintenance.analyze"
# The performance engine's monitor: thresholds over a snapshot, alerts stored and sent.
MONITOR_TASK = "agents.maintenance.monitor"
# The analysis engine's pipeline: the beat job starts chord(group(aggregate per engine), explain).
INSIGHTS_TASK = "agents.maintenance.insights"
ANALYSIS_AGGREGATE_TASK = "agents.analysis.aggregate"
ANALYSIS_EXPLAIN_TASK = "agents.analysis.explain"
ANALYSIS_TASKS = (ANALYSIS_AGGREGATE_TASK, ANALYSIS_EXPLAIN_TASK)  # run on the maintenance queue
# The beat-scheduled jobs.
MAINTENANCE_TASKS = (
    PRUNE_REGISTRY_TASK, REAP_STUCK_TASK, RETENTION_TASK, HEALTH_REPORT_TASK, ANALYZE_TASK, MONITOR_TASK,
    INSIGHTS_TASK,
)  # fmt: skip
# Maintenance jobs have their own queue so a slow job never delays routing.
MAINTENANCE_QUEUE = "maintenance"

# Capabilities of the built-in engines.
CAP_ROUTING = "routing"
CAP_MONITORING = "monitoring"
CAP_PERFORMANCE = "performance"
CAP_OPTIMIZATION = "optimization"
CAP_ANALYSIS = "analysis"
CAP_VALIDATION = "validation"
# The tunable demo engines' capability (agents/engines/tunable.py, `agents demo`).
CAP_DEMO = "demo"

# Message headers of the platform's own (Celery copies unknown headers into the task's request).
# Where the worker publishes a bridged request's result (the event's Reply-To).
REPLY_SUBJECT_HEADER = "agents_reply_subject"
# One id per published message: the worker's claim (db/claims.py) tells a redelivery of this
# message (same id: run it) from a second publish of the same task (other id: skip it).
PUBLISH_ID_HEADER = "agents_publish_id"
# kombu marks a message it put back on the queue (requeue, visibility timeout) with this header.
REDELIVERED_HEADER = "redelivered"
# The app's task serializer: kombu's JSON that refuses a body over MAX_PAYLOAD_BYTES (tasks/publisher.py).
TASK_SERIALIZER = "agents-json"

# NATS subject on which every new insight of the analysis engine is published (JSON).
INSIGHTS_SUBJECT = "agents.insights"

# Redis keys (all under one prefix so an operator can find them with SCAN agents:*).
KEY_PREFIX = "agents:"
LIVE_WORKERS_KEY = KEY_PREFIX + "workers"  # sorted set "engine|host" -> heartbeat expiry
WORKER_ACTIVE_KEY = KEY_PREFIX + "workers:active"  # hash host -> requests running (heartbeat)
ENGINE_INFO_KEY = KEY_PREFIX + "engines"  # hash engine -> JSON card (capabilities, queue_size)
COUNTERS_KEY = KEY_PREFIX + "counters"  # hash "<kind>" -> count (router rejections)
# Prometheus counters and histograms counted at the source (agents/telemetry), read by the exporter.
METRICS_KEY = KEY_PREFIX + "metrics"
# The performance engine's monitor: its last reading and alert state (agents/monitoring/monitor.py).
MONITOR_STATE_KEY = KEY_PREFIX + "monitor:state"
# The optimization engine's guards between runs (tasks/optimizer.py).
OPTIMIZER_STATE_KEY = KEY_PREFIX + "optimizer:state"
# Lifecycle records wait here until a history writer moves them to PostgreSQL.
HISTORY_PENDING_KEY = KEY_PREFIX + "history:pending"
HISTORY_WRITERS_KEY = KEY_PREFIX + "history:writers"  # sorted set writer id -> liveness expiry


def engine_task_name(engine: str) -> str:
    """Celery task name of an engine's handler task."""
    return ENGINE_TASK_PREFIX + engine


def engine_of(task_name: str) -> str | None:
    """The engine whose task this is (None for the router and maintenance jobs)."""
    return task_name.removeprefix(ENGINE_TASK_PREFIX) if task_name.startswith(ENGINE_TASK_PREFIX) else None


def is_platform_task(task_name: str | None) -> bool:
    """Tasks of this platform (agents.*), as opposed to a caller's own tasks on the same app."""
    return bool(task_name) and str(task_name).startswith(TASK_NAMESPACE)


def breaker_key(engine: str) -> str:
    """Redis hash holding one engine's circuit breaker."""
    return f"{KEY_PREFIX}breaker:{engine}"


def history_inflight_key(writer: str) -> str:
    """Redis list holding the batch a history writer is currently writing."""
    return f"{KEY_PREFIX}history:inflight:{writer}"


def stats_key(engine: str) -> str:
    """Redis hash holding one engine's recent success rate and latency."""
    return f"{KEY_PREFIX}stats:{engine}"


# Kombu's Redis transport keeps one list per priority step: "<queue>", "<queue>\x06\x163", ...
# celeryconfig passes these to the transport so queue-depth reads use the same keys.
PRIORITY_STEPS = (0, 3, 6, 9)
PRIORITY_SEP = "\x06\x16"


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that together hold a queue's waiting messages."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS]


# NATS bridge: the live rollback switch and one dedup marker per published event task.
TRAFFIC_ROUTE_KEY = KEY_PREFIX + "traffic_route"
# Hash bridge id -> JSON {lag, paused, at}: each bridge's consumer lag, for the monitor
# (agents/telemetry/bridge_lag.py); the bridge's own /metrics serves it to Prometheus.
BRIDGE_LAG_KEY = KEY_PREFIX + "bridge_lag"


# The reliable fetch (tasks/transport): consumers' heartbeats by server time, what each one holds
# unacked, malformed raw messages moved aside, and the lock of the dead-consumer sweep.
BROKER_CONSUMERS_KEY = KEY_PREFIX + "broker:consumers"  # sorted set consumer id -> last heartbeat
BROKER_MALFORMED_KEY = KEY_PREFIX + "broker:malformed"  # list of raw messages no worker can read
BROKER_SWEEP_LOCK_KEY = KEY_PREFIX + "broker:sweep"


def broker_owned_key(consumer: str) -> str:
    """Redis set of the delivery tags a broker consumer has taken and not yet acked."""
    return f"{KEY_PREFIX}broker:owned:{consumer}"


def deliveries_key(task_id: str) -> str:
    """Redis counter of how many times a request's message came back to a worker."""
    return f"{KEY_PREFIX}deliveries:{task_id}"


def faults_key(engine: str) -> str:
    """Redis hash of the faults injected into a tunable engine (delay_ms, fail_ratio)."""
    return f"{KEY_PREFIX}faults:{engine}"


def bridge_marker_key(task_id: str) -> str:
    """Redis string marking that the bridge published (or is publishing) task `task_id`."""
    return f"{KEY_PREFIX}bridge:{task_id}"
