"""Writes lifecycle rows to task_results and answers the operators' history questions."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import structlog
from sqlalchemy import Boolean, String, and_, case, false, func, literal_column, select, text, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DataError, IntegrityError

from agents.lifecycle import digest
from agents.statuses import FINAL_STATUSES, PROCESSING
from db.models import TaskResult
from db.session import get_engine

_TIME_FIELDS = ("created_at", "status_at", "started_at", "finished_at")
_COLUMNS = [c.name for c in TaskResult.__table__.columns]
# Text columns PostgreSQL caps: longer values are cut (a task_id is never cut: it is the key).
_LIMITS = {
    c.name: c.type.length
    for c in TaskResult.__table__.columns
    if isinstance(c.type, String) and c.type.length and c.name != "task_id"
}
_JSON_COLUMNS = ("payload", "result")
# What PostgreSQL or the driver refuses in a record: a NUL, a lone surrogate, NaN in jsonb, a
# value too long, a null key (an OperationalError, PostgreSQL away, is not one: it is retried).
_REFUSED = (DataError, IntegrityError, ValueError)

log = structlog.get_logger("agents.history")
refused_records = 0  # records set aside by this process since it started (each also logged)


def _as_datetime(value: Any) -> Any:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else value


def to_db_row(row: dict[str, Any]) -> dict[str, Any]:
    """A folded row with epoch seconds turned into timestamps and every column present."""
    out = {column: row.get(column) for column in _COLUMNS}
    for field in _TIME_FIELDS:
        out[field] = _as_datetime(out[field])
    out["retries"] = out["retries"] or 0
    if out["payload"] is not None and out["payload_digest"] is None:
        # Computed here, in the writer, to keep hashing off the publisher's and worker's path.
        out["payload_digest"] = digest(out["payload"])
    return out


@lru_cache(maxsize=1)
def _upsert_statement() -> Any:
    """The upsert, built once; executed with many rows it is compiled once and cached."""
    table = TaskResult.__table__
    new = insert(TaskResult)
    old, incoming = table.c, new.excluded
    # Literal lists: executemany cannot expand IN parameters (the statuses are constants).
    finals = ", ".join(f"'{status}'" for status in sorted(FINAL_STATUSES))
    old_final = literal_column(f"task_results.status IN ({finals})", Boolean)
    new_final = literal_column(f"excluded.status IN ({finals})", Boolean)
    # Same rule as agents.lifecycle.status_wins: an outcome beats a stage; otherwise newer wins.
    takes_status = case(
        (and_(new_final, ~old_final), true()),
        (and_(old_final, ~new_final), false()),
        else_=incoming.status_at >= old.status_at,
    )
    merged: dict[str, Any] = {
        name: func.coalesce(getattr(incoming, name), getattr(old, name))
        for name in _COLUMNS
        if name not in {"task_id", "status", "status_at", "created_at", "retries", "runtime"}
    }
    merged |= {
        "status": case((takes_status, incoming.status), else_=old.status),
        "status_at": case((takes_status, incoming.status_at), else_=old.status_at),
        "created_at": func.least(old.created_at, incoming.created_at),
        "retries": func.greatest(old.retries, incoming.retries),
        "runtime": func.coalesce(
            incoming.runtime,
            old.runtime,
            func.extract(
                "epoch",
                func.coalesce(incoming.finished_at, old.finished_at)
                - func.coalesce(old.started_at, incoming.started_at),
            ),
        ),
    }
    return new.on_conflict_do_update(index_elements=[table.c.task_id], set_=merged)


def upsert(rows: Iterable[dict[str, Any]]) -> int:
    """Insert or merge rows (one per task id) by the rules of agents.lifecycle; returns the count.

    A batch PostgreSQL refuses is written again with its text made storable (NUL removed, lone
    surrogates replaced, NaN and Infinity in JSON as text, capped columns cut); a record still
    refused is found by halving the batch and set aside (logged, counted), so the rest is
    written and no batch goes round forever. The usual batch costs nothing of this."""
    values: list[dict[str, Any]] = []
    for row in rows:
        try:
            values.append(to_db_row(row))
        except (ValueError, TypeError, RecursionError) as exc:  # e.g. a payload too deep to digest
            _set_aside(row, exc)
    if values:
        try:
            _execute(values)
        except _REFUSED:
            _write_apart([sanitised(v) for v in values])
    return len(values)


def _execute(values: list[dict[str, Any]]) -> None:
    with get_engine().begin() as connection:
        connection.execute(_upsert_statement(), values)


def _write_apart(values: list[dict[str, Any]]) -> None:
    try:
        _execute(values)
    except _REFUSED as exc:
        if len(values) > 1:
            half = len(values) // 2
            _write_apart(values[:half])
            _write_apart(values[half:])
        else:
            _set_aside(values[0], exc)


def _set_aside(value: dict[str, Any], exc: Exception) -> None:
    global refused_records
    refused_records += 1
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
    log.error(
        "history_record_refused",
        task_id=repr(value.get("task_id"))[:100],
        status=value.get("status"),
        reason=f"{type(getattr(exc, 'orig', None) or exc).__name__}: {reason}",
        record=repr(value)[:1000],
        refused_in_process=refused_records,
    )


def sanitised(value: dict[str, Any]) -> dict[str, Any]:
    """A row's values as PostgreSQL stores them (see `upsert`); as is if too deep to walk."""
    try:
        return _sanitised(value)
    except RecursionError:
        return value


def _sanitised(value: dict[str, Any]) -> dict[str, Any]:
    out = {name: _text(v) if isinstance(v, str) else v for name, v in value.items()}
    for name, limit in _LIMITS.items():
        if isinstance(out.get(name), str):
            out[name] = out[name][:limit]
    for name in _JSON_COLUMNS:
        out[name] = _json(out.get(name))
    return out


def _text(value: str) -> str:
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # jsonb has no NaN nor Infinity
    if isinstance(value, dict):
        return {_text(str(k)): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def status_counts(since: timedelta) -> dict[str, int]:
    """Tasks by status created in the last `since` (the seed's first runbook query)."""
    query = text(
        "SELECT status, COUNT(*) FROM task_results WHERE created_at > NOW() - :since GROUP BY status"
    )
    with get_engine().connect() as connection:
        return {status: count for status, count in connection.execute(query, {"since": since})}


def task_type_counts(since: timedelta) -> list[tuple[str, int]]:
    """Tasks by type created in the last `since`, most frequent first."""
    query = text(
        "SELECT task_type, COUNT(*) FROM task_results WHERE created_at > NOW() - :since "
        "GROUP BY task_type ORDER BY count DESC"
    )
    with get_engine().connect() as connection:
        return [(str(t), int(c)) for t, c in connection.execute(query, {"since": since})]


def engine_figures(capability: str, since: datetime, until: datetime) -> dict[str, dict[str, float]]:
    """Per engine, the requests of `capability` created in [since, until): how many were sent to it,
    how many failed, how many finished, and the finished ones' median runtime in seconds (`agents
    demo` reads its phases with it)."""
    query = text(
        "SELECT engine, COUNT(*), COUNT(*) FILTER (WHERE status = 'failed'), COUNT(runtime), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY runtime) FROM task_results "
        "WHERE capability = :capability AND created_at >= :since AND created_at < :until "
        "AND engine IS NOT NULL GROUP BY engine"
    )
    with get_engine().connect() as connection:
        rows = connection.execute(query, {"capability": capability, "since": since, "until": until})
        return {
            str(engine): {
                "ran": int(ran),
                "failed": int(failed),
                "finished": int(finished),
                "runtime_p50": float(p50 or 0.0),
            }
            for engine, ran, failed, finished, p50 in rows
        }


def stuck(older_than: timedelta, limit: int = 1000) -> list[TaskResult]:
    """Rows still processing that started more than `older_than` ago, oldest first."""
    cutoff = datetime.now(UTC) - older_than
    query = (
        select(TaskResult)
        .where(TaskResult.status == PROCESSING, TaskResult.started_at < cutoff)
        .order_by(TaskResult.started_at)
        .limit(limit)
    )
    with get_engine().connect() as connection:
        return [TaskResult(**row._mapping) for row in connection.execute(query)]


def get(task_id: str) -> dict[str, Any] | None:
    """One task's row as a dict, or None."""
    with get_engine().connect() as connection:
        row = connection.execute(select(TaskResult.__table__).where(TaskResult.task_id == task_id)).first()
    return dict(row._mapping) if row else None


def recent_errors(since: timedelta, limit: int = 10) -> list[tuple[str, int]]:
    """Most frequent error messages of failed tasks in the last `since`."""
    query = text(
        "SELECT left(error, 200) AS error, COUNT(*) FROM task_results "
        "WHERE status = 'failed' AND created_at > NOW() - :since "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT :limit"
    )
    with get_engine().connect() as connection:
        return [(str(e), int(c)) for e, c in connection.execute(query, {"since": since, "limit": limit})]


def mark(task_id: str, *, status: str, error: str, retries_increment: int = 0) -> bool:
    """Move a row that is still processing to `status` with a reason; False if it moved on."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {"status": status, "status_at": now, "error": error}
    if status in FINAL_STATUSES:
        values["finished_at"] = now
    if retries_increment:
        values["retries"] = TaskResult.retries + retries_increment
    statement = (
        update(TaskResult)
        .where(TaskResult.task_id == task_id, TaskResult.status == PROCESSING)
        .values(**values)
    )
    with get_engine().begin() as connection:
        return bool(connection.execute(statement).rowcount)
