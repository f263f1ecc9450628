"""The one settings object: the only place in the project that reads the environment."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.redis_sentinel import sentinel_problem
from agents.redis_tls import redis_tls_problem

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# `agents up` writes the URLs of the running local stack here; other terminals read it.
DEFAULT_HOME = PROJECT_ROOT / ".agents"


def _stack_env_file() -> Path:
    # AGENTS_HOME decides where the stack file lives, so it has to be read before the model.
    return Path(os.environ.get("AGENTS_HOME", str(DEFAULT_HOME))) / "stack.env"


class Settings(BaseSettings):
    """Every setting of the platform; environment variables win over `.agents/stack.env`."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    agents_home: Path = Field(DEFAULT_HOME, description="Local stack data, logs and stack.env.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Broker and result backend.")
    # TLS to Redis (rediss:// only): the server's certificate and host name are always verified.
    redis_tls_ca_file: Path | None = Field(
        None, description="CA bundle that signed Redis's certificate (rediss://); unset: the system's CAs."
    )
    redis_tls_cert_file: Path | None = Field(
        None, description="Client certificate (PEM) for a Redis that asks for one (rediss://)."
    )
    redis_tls_key_file: Path | None = Field(
        None, description="Private key of REDIS_TLS_CERT_FILE (unset: the key is in that file)."
    )
    # Redis behind Sentinel: REDIS_URL=sentinel://:<password>@host:26379/0;sentinel://host2:26379/0
    redis_sentinel_master: str = Field(
        "agents", description="The master set's name the Sentinels watch (sentinel:// REDIS_URL)."
    )
    redis_sentinel_password: str | None = Field(
        None, description="The Sentinels' own password (`requirepass` of each Sentinel); unset: none."
    )
    # Redis replication is asynchronous: a publish acknowledged by a primary that dies before its
    # replica copied it is lost in the failover. WAIT narrows that window, at a price per publish.
    redis_publish_replicas: int = Field(
        0, ge=0, description="Each publish waits (WAIT) until this many replicas have it; 0: no wait."
    )
    redis_publish_wait_ms: int = Field(
        100, ge=1, description="How long a publish waits for REDIS_PUBLISH_REPLICAS before going on."
    )
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/agents", description="Durable task history."
    )
    database_migrations_url: str | None = Field(
        None,
        description="Who runs migrations (the schema's owner, e.g. agents_migrator); unset: DATABASE_URL.",
    )
    nats_url: str = Field("nats://127.0.0.1:4222", description="External events (NATS bridge).")
    nats_stream_replicas: int = Field(
        1, ge=1, le=5, description="Copies of each bridge stream in a NATS cluster (1: one server)."
    )
    flower_url: str = Field("http://127.0.0.1:5555", description="Where Flower listens.")
    flower_basic_auth: str | None = Field(
        None, description="user:password for Flower; `make run` generates admin:<random> when unset."
    )
    agent_engines: str = Field("", description="Extra engines: comma-separated `module:attribute` paths.")
    agent_hooks: str = Field(
        "", description="Extra pipeline hooks (tasks/pipeline/hook.py): comma-separated `module:Class` paths."
    )
    task_max_deliveries: int = Field(
        10, ge=2, description="A request whose message reached a worker this often fails as poison."
    )
    max_payload_bytes: int = Field(
        1_048_576, ge=1024, description="Largest task body (serialized) or bridge event body, in bytes."
    )
    agent_task_timeout_seconds: int = Field(
        300, ge=1, description="Default hard time limit of an engine task."
    )
    soft_time_limit_margin_seconds: int = Field(
        5, ge=0, description="Soft limit fires this long before the hard one."
    )
    visibility_timeout_margin_seconds: int = Field(
        300, ge=60, description="Redis redelivers unacked tasks this long after the longest limit."
    )
    result_expires_seconds: int = Field(86400, ge=60, description="How long results stay in Redis.")
    worker_prefetch_multiplier: int = Field(1, ge=1, description="Messages reserved per process.")
    task_events: bool = Field(
        True, description="Workers send task events for Flower and `celery events` (one per request)."
    )
    broker_reliable_fetch: bool = Field(
        True,
        description="Workers take messages with one atomic script, in bulk, and recover a dead "
        "worker's messages by heartbeat (tasks/transport/); false: kombu's own BRPOP.",
    )
    broker_consumer_dead_seconds: float = Field(
        30.0, ge=2, le=600, description="A worker silent this long is dead: its reserved messages go back."
    )
    broker_idle_poll_ms: float = Field(
        50.0, gt=0, le=1000, description="Longest pause between a worker's empty fetches (its idle cost)."
    )
    db_pool_max_size: int = Field(20, ge=1, description="PostgreSQL pool size per process.")
    db_pool_overflow: int = Field(5, ge=0, description="Extra PostgreSQL connections beyond the pool.")
    history_batch_size: int = Field(500, ge=1, description="Lifecycle records written per batch.")
    history_flush_interval_seconds: float = Field(
        0.5, gt=0, description="How often each worker moves lifecycle records to PostgreSQL."
    )
    history_writer_in_workers: bool = Field(
        False, description="Run a history writer thread in every worker instead of `agents history-writer`."
    )
    history_retention_days: int = Field(30, ge=1, description="Task history older than this is deleted.")
    retention_batch_size: int = Field(5000, ge=1, description="Rows deleted per retention statement.")
    reaper_grace_seconds: int = Field(
        60, ge=0, description="A task processing longer than its hard limit plus this is stuck."
    )
    reaper_interval_seconds: float = Field(60, gt=0, description="Beat: stuck-task reaper period.")
    retention_interval_seconds: float = Field(3600, gt=0, description="Beat: history retention period.")
    health_report_interval_seconds: float = Field(300, gt=0, description="Beat: health report period.")
    monitor_interval_seconds: float = Field(
        15, gt=0, description="Beat: the monitor's period (thresholds over a performance snapshot)."
    )
    analyze_interval_seconds: float = Field(3600, gt=0, description="Beat: ANALYZE of hot tables period.")
    # The analysis engine's pipeline over the history (tasks/analysis_pipeline.py) -> insights.
    analysis_interval_seconds: float = Field(
        300, gt=0, description="Beat: how often the analysis pipeline looks for insights."
    )
    analysis_recent_seconds: float = Field(
        300, gt=0, description="The analysed (recent) window: requests created this long ago or later."
    )
    analysis_baseline_seconds: float = Field(
        3600, gt=0, description="The baseline window just before the recent one, compared with it."
    )
    analysis_samples_limit: int = Field(
        5000, ge=10, description="Requests read per engine and window (newest first): bounds each query."
    )
    insight_cooldown_seconds: float = Field(
        300, ge=0, description="The same insight (kind, subject) is not stored again this soon unless worse."
    )
    traffic_route: Literal["new_system", "old_system"] = Field(
        "new_system", description="old_system stops the NATS bridge consuming (rollback)."
    )
    # NATS bridge (agents/bridge/): stream, consumer, subject map, dead letters, dedup, results.
    bridge_stream: str = Field("AGENTS_EVENTS", description="JetStream stream the bridge consumes.")
    bridge_consumer: str = Field("agents-bridge", description="Durable pull consumer of the bridge.")
    bridge_subject_prefix: str = Field(
        "events", description="Default map: <prefix>.<capability>.<task_type> -> that request."
    )
    bridge_subject_map: dict[str, str] = Field(
        default_factory=dict, description='Extra subjects, JSON: {"orders.*": "capability[:task_type]"}.'
    )
    bridge_dlq_subject: str = Field("agents.dlq", description="Dead-letter subject for bad events.")
    bridge_dlq_stream: str = Field("AGENTS_DLQ", description="Stream keeping dead letters (empty: none).")
    bridge_batch_size: int = Field(500, ge=1, le=10_000, description="Events fetched per pull.")
    bridge_fetch_timeout_seconds: float = Field(1.0, gt=0, description="Longest wait of one pull.")
    bridge_ack_wait_seconds: float = Field(30.0, ge=1, description="Consumer ack_wait.")
    bridge_duplicate_window_seconds: float = Field(
        120.0, gt=0, description="JetStream drops a repeated Nats-Msg-Id within this window."
    )
    bridge_dedup_ttl_seconds: int = Field(
        86400, ge=60, description="How long a published event's marker blocks a second task."
    )
    bridge_max_deliveries: int = Field(
        10, ge=1, description="NoLiveEngine/Backpressure dead-letter after this many deliveries."
    )
    bridge_nak_delay_seconds: float = Field(0.5, gt=0, description="First redelivery delay; doubles.")
    bridge_nak_delay_max_seconds: float = Field(30.0, gt=0, description="Longest redelivery delay.")
    bridge_results_subject: str = Field(
        "", description="Engine results of bridged events go here too (empty: off)."
    )
    bridge_route_poll_seconds: float = Field(1.0, gt=0, description="How often TRAFFIC_ROUTE is re-read.")
    bridge_sent_events: bool = Field(
        False, description="Emit Celery task-sent events for bridged tasks (halves bridge throughput)."
    )
    breaker_failure_threshold: int = Field(
        5, ge=1, description="Consecutive failures that open an engine's breaker."
    )
    breaker_reset_timeout_seconds: float = Field(
        30.0, gt=0, description="Open breaker waits this long before a half-open trial."
    )
    routing_explore_share: float = Field(
        0.02, ge=0, le=0.5,
        description="Share of routed requests tried on an engine other than the best (0: never).",
    )  # fmt: skip
    heartbeat_interval_seconds: float = Field(5.0, gt=0, description="Worker heartbeat period.")
    heartbeat_ttl_seconds: float = Field(
        15.0, gt=0, description="An engine without a heartbeat this long leaves routing."
    )
    flower_port: int = Field(5555, ge=1, le=65535, description="Flower port for `make run`.")
    log_level: str = Field("INFO", description="Log level of workers and CLI.")
    log_format: Literal["json", "text"] = Field(
        "json", description="json: one JSON object per line from every process; text: key=value lines."
    )
    # Observability (issue 10): the exporter, worker health endpoints.
    exporter_port: int = Field(9808, ge=1, le=65535, description="`agents exporter` serves /metrics here.")
    exporter_url: str = Field("http://127.0.0.1:9808", description="Where the exporter answers.")
    worker_offline_after_seconds: float = Field(
        300.0, gt=0, description="The exporter drops a worker's series this long after its last heartbeat."
    )
    health_port: int = Field(
        8080, ge=0, le=65535, description="Each worker serves /health and /metrics here (0: off)."
    )
    monitoring_thresholds: Path | None = Field(
        None,
        description="Performance engine thresholds YAML (unset: agents/monitoring/default_thresholds.yml).",
    )
    optimization_rules: Path | None = Field(
        None, description="Optimization engine rules YAML (unset: agents/monitoring/default_rules.yml)."
    )
    otel_enabled: bool = Field(
        False,
        description="Trace context through task headers (tasks/tracing.py); the SDK reads its own OTEL_*.",
    )

    @field_validator("agent_engines", "agent_hooks")
    @classmethod
    def _import_paths_look_right(cls, value: str, info: ValidationInfo) -> str:
        for path in _split(value):
            module, _, attribute = path.partition(":")
            if not module or not attribute:
                name = (info.field_name or "").upper()
                raise ValueError(f"{name} entry {path!r} must look like 'package.module:name'")
        return value

    @field_validator("redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file", mode="before")
    @classmethod
    def _empty_tls_file_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # k8s and .env files often set a variable to ""

    @field_validator("redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file")
    @classmethod
    def _tls_file_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{(info.field_name or '').upper()}: no such file {str(value)!r}")
        return value

    @model_validator(mode="after")
    def _redis_tls_is_coherent(self) -> Settings:
        tls_files = bool(self.redis_tls_ca_file or self.redis_tls_cert_file or self.redis_tls_key_file)
        if problem := sentinel_problem(self.redis_url, self.redis_sentinel_master, tls_files):
            raise ValueError(problem)
        if problem := redis_tls_problem(
            self.redis_url, self.redis_tls_ca_file, self.redis_tls_cert_file, self.redis_tls_key_file
        ):
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _heartbeat_outlives_interval(self) -> Settings:
        if self.heartbeat_ttl_seconds <= self.heartbeat_interval_seconds:
            raise ValueError("HEARTBEAT_TTL_SECONDS must be longer than HEARTBEAT_INTERVAL_SECONDS")
        return self

    @property
    def engine_paths(self) -> list[str]:
        """AGENT_ENGINES as a list of `module:attribute` strings."""
        return _split(self.agent_engines)

    @property
    def hook_paths(self) -> list[str]:
        """AGENT_HOOKS as a list of `module:attribute` strings."""
        return _split(self.agent_hooks)

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
        return _with_psycopg(self.database_url)

    @property
    def migrations_sqlalchemy_url(self) -> str:
        """DATABASE_MIGRATIONS_URL (else DATABASE_URL) with the psycopg 3 driver named."""
        return _with_psycopg(self.database_migrations_url or self.database_url)

    @property
    def stack_env_file(self) -> Path:
        """File where `agents up` publishes the URLs of the running stack."""
        return self.agents_home / "stack.env"


def _with_psycopg(url: str) -> str:
    """The psycopg 3 driver named; a libpq multi-host URL (`@h1:p1,h2:p2/db`) turned into the
    `?host=h1:p1&host=h2:p2` form, the only one SQLAlchemy parses."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return url
    netloc, _, tail = rest.partition("/")
    user, at, hosts = netloc.rpartition("@")
    if "," not in hosts:
        return f"postgresql+psycopg://{rest}"
    path, _, query = tail.partition("?")
    params = "&".join(f"host={host}" for host in hosts.split(",") if host)
    return f"postgresql+psycopg://{user}{at}/{path}?{params}{'&' if query else ''}{query}"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once (environment first, then `.agents/stack.env`)."""
    return Settings(_env_file=_stack_env_file())
