"""The analysis engine's SQL: samples of the history per engine and window, and the `insights`
table (stored with a cooldown per kind and subject, listed newest first)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import desc, func, insert, select

from agents.monitoring.figures import Sample
from agents.monitoring.insights import ACTION_VERDICT, ANALYSED_STATUSES, Insight, severity_rank
from agents.statuses import FINAL_STATUSES
from db.models import Insight as InsightRow
from db.models import TaskResult
from db.session import get_engine


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def engines_seen(since: float, until: float) -> list[str]:
    """Engines with requests created in [since, until], by name (the created_at index bounds it)."""
    query = (
        select(TaskResult.engine)
        .distinct()
        .where(TaskResult.created_at >= _at(since), TaskResult.created_at <= _at(until))
        .where(TaskResult.engine.is_not(None))
        .order_by(TaskResult.engine)
    )
    with get_engine().connect() as connection:
        return [str(engine) for engine in connection.scalars(query)]


def unfinished(engine: str, since: float, until: float) -> int:
    """How many of the engine's requests created in [since, until) have not finished yet."""
    t = TaskResult
    query = (
        select(func.count())
        .where(t.engine == engine, t.created_at >= _at(since), t.created_at < _at(until))
        .where(t.status.not_in(sorted(FINAL_STATUSES)))
    )
    with get_engine().connect() as connection:
        return int(connection.scalar(query) or 0)


def analysed_count(engine: str, since: float, until: float) -> int:
    """How many of the engine's requests created in [since, until) ran to success or failure."""
    t = TaskResult
    query = (
        select(func.count())
        .where(t.engine == engine, t.created_at >= _at(since), t.created_at < _at(until))
        .where(t.status.in_(sorted(ANALYSED_STATUSES)))
    )
    with get_engine().connect() as connection:
        return int(connection.scalar(query) or 0)


def read_samples(engine: str, since: float, until: float, limit: int) -> list[Sample]:
    """The engine's finished requests created in [since, until), newest first, at most `limit`.
    By creation time: the created_at index serves it, newest first, and stops at the limit."""
    t = TaskResult
    query = (
        select(t.capability, t.status, t.created_at, t.finished_at, t.runtime)
        .where(t.engine == engine, t.created_at >= _at(since), t.created_at < _at(until))
        .where(t.status.in_(sorted(FINAL_STATUSES)))
        .order_by(t.created_at.desc())
        .limit(limit)
    )
    with get_engine().connect() as connection:
        rows = connection.execute(query).all()
    return [
        Sample(
            engine,
            capability,
            status,
            created.timestamp(),
            finished.timestamp() if finished else None,
            runtime,
        )
        for capability, status, created, finished, runtime in rows
    ]


def store_insight(
    insight: Insight, cooldown_seconds: float, engine: str | None = None
) -> dict[str, Any] | None:
    """Insert the insight unless one of the same kind and subject, as severe or more, was stored
    in the last `cooldown_seconds`; the stored row, or None. Concurrent stores of one (kind,
    subject) take turns (a transaction-scoped advisory lock), so two runs cannot both insert."""
    row = InsightRow
    with get_engine().begin() as connection:
        connection.execute(
            select(func.pg_advisory_xact_lock(func.hashtext(f"{insight.kind}|{insight.subject}")))
        )
        recent = connection.scalars(
            select(row.severity).where(
                row.kind == insight.kind,
                row.subject == insight.subject,
                row.created_at > func.now() - timedelta(seconds=cooldown_seconds),
            )
        ).all()
        if any(severity_rank(s) >= severity_rank(insight.severity) for s in recent):
            return None
        stored = connection.execute(
            insert(row)
            .values(engine=engine, summary=insight.summary, data=insight.evidence, **_keys(insight))
            .returning(*row.__table__.columns)
        ).one()
        return dict(stored._mapping)


def _keys(insight: Insight) -> dict[str, str]:
    return {"kind": insight.kind, "subject": insight.subject, "severity": insight.severity}


def recent_counts(seconds: float) -> dict[str, float]:
    """Per subject, the warning or worse findings stored in the last `seconds` (the optimizer's own
    verdicts left out): the snapshot's `insights_recent`."""
    query = (
        select(InsightRow.subject, func.count())
        .where(
            InsightRow.created_at > func.now() - timedelta(seconds=seconds),
            InsightRow.kind != ACTION_VERDICT,
            InsightRow.severity.in_(("warning", "critical")),
        )
        .group_by(InsightRow.subject)
    )
    with get_engine().connect() as connection:
        return {str(subject): float(n) for subject, n in connection.execute(query) if subject}


def list_insights(limit: int = 50, kind: str | None = None) -> list[dict[str, Any]]:
    """The newest insights first (only those of `kind` when given)."""
    query = select(InsightRow).order_by(desc(InsightRow.created_at), desc(InsightRow.id)).limit(limit)
    if kind:
        query = query.where(InsightRow.kind == kind)
    with get_engine().connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
