"""SQLAlchemy 2 models of the durable history. Column names serve the seed's own SQL queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Float, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# None is SQL NULL, not JSON 'null': COALESCE in the history upsert must see it as missing.
JSON_OR_NULL = JSONB(none_as_null=True)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map = {dict[str, Any]: JSON_OR_NULL, datetime: DateTime(timezone=True)}


class TaskResult(Base):
    """One row per task id: its latest lifecycle state (a routed request keeps one id)."""

    __tablename__ = "task_results"

    task_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    task_name: Mapped[str | None] = mapped_column(String(200))
    task_type: Mapped[str | None] = mapped_column(String(64))
    capability: Mapped[str | None] = mapped_column(String(64))
    engine: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[Any | None] = mapped_column(JSON_OR_NULL)
    payload_digest: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[Any | None] = mapped_column(JSON_OR_NULL)
    error: Mapped[str | None] = mapped_column(Text)
    retries: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    worker: Mapped[str | None] = mapped_column(String(200))
    confidence: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    runtime: Mapped[float | None] = mapped_column(Float, comment="seconds from start to finish")
    # When the current status was reached: a late event never overwrites a newer one.
    status_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        # "status counts in the last hour" and "task types in the last hour" (seed runbook).
        Index("ix_task_results_created_at", "created_at"),
        Index("ix_task_results_task_type_created_at", "task_type", "created_at"),
        # The stuck-task query: status='processing' AND started_at < ...
        Index(
            "ix_task_results_processing_started_at",
            "started_at",
            postgresql_where=text("status = 'processing'"),
        ),
    )


class Alert(Base):
    """An alert raised by an engine or a maintenance job."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    engine: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, Any] | None]
    resolved_at: Mapped[datetime | None]


class Insight(Base):
    """A finding of the analysis engine."""

    __tablename__ = "insights"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    engine: Mapped[str | None] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None]  # the evidence: the figures behind the summary
    # What it is about (an engine for the pipeline's kinds) and how bad: info, warning, critical.
    subject: Mapped[str | None] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16), server_default=text("'info'"))

    __table_args__ = (Index("ix_insights_kind_subject_created_at", "kind", "subject", "created_at"),)


class OptimizationAction(Base):
    """An action recommended (and perhaps applied) by the optimization engine."""

    __tablename__ = "optimization_actions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    engine: Mapped[str | None] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(16), server_default=text("'recommended'"))
    applied_at: Mapped[datetime | None]
    # The rule that chose it, the rule's metric before and after the settle window, the verdict.
    rule: Mapped[str | None] = mapped_column(String(100))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    verdict: Mapped[str | None] = mapped_column(String(16))
    settled_at: Mapped[datetime | None]


class HealthReport(Base):
    """The periodic health report (the seed's daily_checks.sh), kept for later reading."""

    __tablename__ = "health_reports"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    healthy: Mapped[bool]
    report: Mapped[dict[str, Any]]


class TaskClaim(Base):
    """Which published message of a bridged task id may run (one effect per NATS event)."""

    __tablename__ = "task_claims"

    task_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    publish_id: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
