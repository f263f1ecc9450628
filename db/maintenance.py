"""Maintenance statements: retention in bounded batches, ANALYZE, health reports."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text

from db.session import get_engine

HOT_TABLES = ("task_results", "alerts", "insights", "optimization_actions", "health_reports", "task_claims")
# Each table and the column its age is measured by.
RETAINED = {
    "task_results": "created_at",
    "alerts": "created_at",
    "insights": "created_at",
    "optimization_actions": "created_at",
    "health_reports": "created_at",
    "task_claims": "claimed_at",
}


def delete_older_than(days: int, batch_size: int, time_budget_seconds: float = 60.0) -> dict[str, int]:
    """Delete rows older than `days`, `batch_size` rows per statement, within a time budget."""
    deadline = time.monotonic() + time_budget_seconds
    deleted: dict[str, int] = {}
    for table, column in RETAINED.items():
        # Table and column names come from the constant above, never from input.
        statement = text(
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("  # nosec B608 # names from RETAINED, values bound
            f"SELECT ctid FROM {table} WHERE {column} < NOW() - make_interval(days => :days) LIMIT :n))"
        )
        deleted[table] = 0
        while time.monotonic() < deadline:
            with get_engine().begin() as connection:
                count = connection.execute(statement, {"days": days, "n": batch_size}).rowcount
            deleted[table] += count
            if count < batch_size:
                break
    return deleted


def analyze() -> list[str]:
    """Refresh planner statistics of the hot tables."""
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in HOT_TABLES:
            connection.exec_driver_sql(f"ANALYZE {table}")
    return list(HOT_TABLES)


def store_health_report(report: dict[str, Any]) -> int:
    """Keep one health report; returns its id."""
    from sqlalchemy import insert

    from db.models import HealthReport

    with get_engine().begin() as connection:
        result = connection.execute(
            insert(HealthReport).values(healthy=report["healthy"], report=report).returning(HealthReport.id)
        )
        return int(result.scalar_one())
