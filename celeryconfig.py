"""Every Celery setting, derived from the one settings object. Each line says why.

Loaded by `tasks.app` with `config_from_object("celeryconfig")`.
"""

from __future__ import annotations

from kombu import Queue
from kombu.transport import TRANSPORT_ALIASES

from agents import redis_sentinel, redis_tls
from agents.catalog import engines
from agents.limits import hard_limit, soft_limit
from agents.models import Priority
from agents.names import (
    ANALYSIS_TASKS,
    ANALYZE_TASK,
    HEALTH_REPORT_TASK,
    INSIGHTS_TASK,
    MAINTENANCE_QUEUE,
    MAINTENANCE_TASKS,
    MONITOR_TASK,
    PRIORITY_SEP,
    PRIORITY_STEPS,
    PRUNE_REGISTRY_TASK,
    REAP_STUCK_TASK,
    RETENTION_TASK,
    ROUTE_TASK,
    ROUTER_QUEUE,
    TASK_SERIALIZER,
    engine_task_name,
)
from agents.redis_clients import sentinel_options
from agents.settings import get_settings

_settings = get_settings()
_engines = engines()


_longest_hard_limit = max(
    [_settings.agent_task_timeout_seconds]
    + [hard_limit(e.config.task_timeout_seconds) for e in _engines.values() if e.config]
)

# Redis is both broker and result store; a production deployment points REDIS_URL at its own cluster.
# Its TLS query keys are dropped: the options below carry TLS (agents/redis_tls.py).
broker_url = redis_tls.client_url(_settings.redis_url)
result_backend = broker_url
# rediss://: verified TLS (CERT_REQUIRED, REDIS_TLS_* files) for broker and backend alike. Needed
# even without files: under our own transport kombu would otherwise speak plaintext to the TLS
# port (it turns TLS on by itself only for its "rediss" transport, and then without verification).
if _tls := redis_tls.ssl_options(_settings):
    broker_use_ssl = _tls
    redis_backend_use_ssl = _tls

# kombu's Redis transport with the reliable fetch: one atomic script takes up to the prefetch window
# of messages and records them as unacked, so a SIGKILL at any moment loses none (tasks/transport/).
# Over rediss:// too: kombu's channel picks its SSLConnection from broker_use_ssl, which our
# channel inherits (tests/agents/test_redis_tls.py runs a worker through it).
if _settings.broker_reliable_fetch and broker_url.startswith(("redis://", "rediss://")):
    broker_transport = "tasks.transport:Transport"
# Redis behind Sentinel (REDIS_URL=sentinel://...;sentinel://...): every new broker or backend
# connection asks the Sentinels for the master, so workers and clients follow a failover.
_sentinel = redis_sentinel.is_sentinel(_settings.redis_url)
if _sentinel:
    broker_url = result_backend = _settings.redis_url
    broker_transport = "tasks.transport:SentinelTransport" if _settings.broker_reliable_fetch else "sentinel"
# After a connection error kombu moves to the URL list's next part and takes the transport from
# its scheme again, dropping `broker_transport` (kombu Connection.switch): a Sentinel failover
# turned workers into stock kombu consumers without the reliable fetch (the failover drill caught
# it). So the schemes themselves name our transports in every process that loads this config.
if _settings.broker_reliable_fetch:
    TRANSPORT_ALIASES.update(
        {
            "redis": "tasks.transport:Transport",
            "rediss": "tasks.transport:Transport",
            "sentinel": "tasks.transport:SentinelTransport",
        }
    )

# JSON only: pickle on the wire is remote code execution. Task bodies are kombu's JSON through a
# serializer that refuses one over MAX_PAYLOAD_BYTES before it reaches Redis (tasks/publisher.py,
# registered by importing the `tasks` package: every process that publishes through the app).
task_serializer = TASK_SERIALIZER
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]
# A message of any other content type is rejected unread; this consumer also counts what Celery
# refuses (agent_messages_refused_total, tasks/refusals.py).
worker_consumer = "tasks.refusals:RefusingConsumer"

# Ack after the task ran, so a worker that dies mid-task does not lose it...
task_acks_late = True
# ...and requeue when the worker process is killed (OOM, SIGKILL) instead of failing the task.
task_reject_on_worker_lost = True
# One reserved message per process: long tasks do not starve idle workers (raise per engine for throughput).
worker_prefetch_multiplier = _settings.worker_prefetch_multiplier
# Default limits for tasks without their own (engine tasks set theirs from AgentConfig).
task_time_limit = _settings.agent_task_timeout_seconds
task_soft_time_limit = soft_limit(_settings.agent_task_timeout_seconds)

# Where a message without a priority of its own lands (and where an idle worker waits for one).
_DEFAULT_PRIORITY = Priority.NORMAL.broker_priority
_broker_connect_timeout = 10.0  # seconds; see broker_transport_options
_broker_health_check = 5  # seconds
# Redis redelivers unacked messages after the visibility timeout: it must outlast the longest
# task, or a long task runs twice. Both broker and result backend read it.
_visibility_timeout = _longest_hard_limit + _settings.visibility_timeout_margin_seconds
broker_transport_options = {
    "visibility_timeout": _visibility_timeout,
    # Priority lists per queue; the registry reads queue depth from the same keys.
    "priority_steps": list(PRIORITY_STEPS),
    "sep": PRIORITY_SEP,
    "queue_order_strategy": "priority",
    # The reliable fetch (tasks/transport/): when a silent worker's messages come back, and the
    # longest pause between an idle worker's fetches.
    "consumer_dead_seconds": _settings.broker_consumer_dead_seconds,
    "idle_poll_max_seconds": _settings.broker_idle_poll_ms / 1000,
    # An idle worker of one queue waits on that queue's list of the default priority.
    "wake_priority": _DEFAULT_PRIORITY,
    # A Redis that vanishes without closing the TCP connection (a partition, a failover, a NAT
    # timeout): kombu drops a fetch connection whose reply is health_check_interval + 1 s overdue
    # (its default 25 s made the chaos partition drill take 46.5 s to resume), and keepalive
    # probes find a dead peer of an idle connection. No socket_timeout: with one, an ack or a
    # requeue cut by the partition fails, and Celery only logs it, so the message stays recorded
    # under a consumer that lives on, until the visibility timeout (the drill lost 2 that way).
    "socket_connect_timeout": _broker_connect_timeout,
    "socket_keepalive": True,
    "health_check_interval": _broker_health_check,
}
# Publishes wait for this many replicas (WAIT) before they count as sent (tasks/transport/replication.py).
broker_transport_options |= {
    "publish_replicas": _settings.redis_publish_replicas,
    "publish_wait_ms": _settings.redis_publish_wait_ms,
}
result_backend_transport_options: dict[str, object] = {"visibility_timeout": _visibility_timeout}
if _sentinel:
    _master = {
        "master_name": _settings.redis_sentinel_master,
        "sentinel_kwargs": sentinel_options(_settings),
    }
    broker_transport_options |= _master
    result_backend_transport_options |= _master
# A publish that meets a dead connection reconnects and retries for up to ~27 s (1, 2, then 3 s
# apart; Celery's default gives up within about a second): long enough for a Sentinel failover
# (a publish went through 6 s after the primary's SIGKILL on loopback, docs/ha.md) or a Redis
# restart, so `.delay()` and the router's forwards outlive one.
task_publish_retry_policy = {"max_retries": 10, "interval_start": 1, "interval_step": 1, "interval_max": 3}
# Keep retrying the broker at start-up instead of crashing when Redis is a few seconds late.
broker_connection_retry_on_startup = True
# Measured with Redis restarts: cancelling running tasks on connection loss lost tasks. Keep off.
worker_cancel_long_running_tasks_on_connection_loss = False
# Results are a cache for callers; PostgreSQL keeps the history.
result_expires = _settings.result_expires_seconds

# Task events feed Flower and `celery events` (batch tasks send one outcome event per request).
worker_send_task_events = _settings.task_events
# No task-sent events: measured at 1,000 req/s they doubled Flower's work (a third of a core on 2
# cores) and the client's; queued work shows as queue depth (Flower's broker tab, agents status).
task_send_sent_event = False
# STARTED state lets Flower and callers tell running from waiting.
task_track_started = True

# One queue per engine; the router's queue is the intelligence engine's.
task_queues = [Queue(name, routing_key=name) for name in [*_engines, MAINTENANCE_QUEUE]]
# Nothing falls back to an unconsumed "celery" queue.
task_default_queue = ROUTER_QUEUE
task_create_missing_queues = False
_MAINTENANCE_ROUTE = {"queue": MAINTENANCE_QUEUE}
# Maintenance jobs go first: kombu's "priority" queue order polls every queue's lists in -Q
# order, priority step by step, so a NORMAL job on `maintenance` waited behind the router's queue
# for as long as it was never empty (10 s and more under a steady routed load). They are few and
# short, and the monitor matters most when the platform is busy. (An annotation, not the route:
# a task's own `priority`, task_default_priority otherwise, outranks its route's.)
task_annotations = {
    name: {"priority": Priority.CRITICAL.broker_priority} for name in (*MAINTENANCE_TASKS, *ANALYSIS_TASKS)
}
task_routes = (
    {ROUTE_TASK: {"queue": ROUTER_QUEUE}}
    | {engine_task_name(name): {"queue": name} for name in _engines}
    | {name: _MAINTENANCE_ROUTE for name in MAINTENANCE_TASKS}
    # The analysis pipeline's steps run beside the beat job that starts them.
    | {name: _MAINTENANCE_ROUTE for name in ANALYSIS_TASKS}
)
# Messages without a priority are NORMAL (kombu's Redis transport serves 0 first).
task_default_priority = _DEFAULT_PRIORITY

# Recycle worker processes now and then so a slow leak in an engine cannot grow forever.
worker_max_tasks_per_child = 10_000
enable_utc = True
timezone = "UTC"

beat_schedule_filename = str(_settings.agents_home / "celerybeat-schedule")
# Beat must run as exactly one instance (k8s: replicas 1, Recreate), or every job runs twice.
# A job that outlives its period is not stacked: it expires instead of queueing up.
_every = {
    PRUNE_REGISTRY_TASK: _settings.heartbeat_ttl_seconds,
    REAP_STUCK_TASK: _settings.reaper_interval_seconds,
    RETENTION_TASK: _settings.retention_interval_seconds,
    HEALTH_REPORT_TASK: _settings.health_report_interval_seconds,
    MONITOR_TASK: _settings.monitor_interval_seconds,
    ANALYZE_TASK: _settings.analyze_interval_seconds,
    INSIGHTS_TASK: _settings.analysis_interval_seconds,
}
beat_schedule = {
    name.rsplit(".", 1)[-1]: {"task": name, "schedule": period, "options": {"expires": period}}
    for name, period in _every.items()
}
