"""The `optimization_actions` table: what the optimization engine did (or would do, dry run), the
rule's metric before and after the settle window, and the verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from db.models import OptimizationAction
from db.session import get_engine

APPLIED, DRY_RUN, FAILED, REVERT = "applied", "dry_run", "failed", "revert"


def record(engine: str, action: str, rule: str, reason: str, params: dict[str, Any], status: str,
           before: dict[str, Any] | None) -> int:  # fmt: skip
    """Store one action; its id."""
    values = {"engine": engine, "action": action, "rule": rule, "reason": reason, "params": params,
              "status": status, "before": before,
              "applied_at": datetime.now(UTC) if status in (APPLIED, REVERT) else None}  # fmt: skip
    with get_engine().begin() as connection:
        return int(
            connection.execute(
                insert(OptimizationAction).values(**values).returning(OptimizationAction.id)
            ).scalar_one()
        )


def unsettled() -> list[dict[str, Any]]:
    """Applied actions still waiting for their verdict, oldest first."""
    query = (
        select(OptimizationAction)
        .where(OptimizationAction.status == APPLIED, OptimizationAction.settled_at.is_(None))
        .order_by(OptimizationAction.id)
    )
    with get_engine().connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def settle(action_id: int, after: dict[str, Any], verdict: str) -> None:
    """Record the metric after the settle window and the verdict."""
    statement = (
        update(OptimizationAction)
        .where(OptimizationAction.id == action_id)
        .values(after=after, verdict=verdict, settled_at=datetime.now(UTC))
    )
    with get_engine().begin() as connection:
        connection.execute(statement)


def list_actions(limit: int = 50) -> list[dict[str, Any]]:
    """The newest actions first."""
    query = select(OptimizationAction).order_by(OptimizationAction.id.desc()).limit(limit)
    with get_engine().connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
