"""The `alerts` table: one open row per threshold and subject, resolved when the condition clears."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from db.models import Alert
from db.session import get_engine


def open_alert(name: str, subject: str, severity: str, message: str, labels: dict[str, Any]) -> int | None:
    """Insert the alert unless one is already open for this threshold and subject; its id, or None."""
    with get_engine().begin() as connection:
        already = connection.execute(
            select(Alert.id).where(Alert.name == name, Alert.engine == subject, Alert.resolved_at.is_(None))
        ).first()
        if already is not None:
            return None
        inserted = connection.execute(
            insert(Alert)
            .values(name=name, engine=subject, severity=severity, message=message, labels=labels)
            .returning(Alert.id)
        )
        return int(inserted.scalar_one())


def resolve_alert(name: str, subject: str) -> bool:
    """Mark the open alert of this threshold and subject resolved; False if none was open."""
    statement = (
        update(Alert)
        .where(Alert.name == name, Alert.engine == subject, Alert.resolved_at.is_(None))
        .values(resolved_at=datetime.now(UTC))
    )
    with get_engine().begin() as connection:
        return bool(connection.execute(statement).rowcount)


def list_alerts(open_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
    """The newest alerts first (only the unresolved ones with `open_only`)."""
    query = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)
    if open_only:
        query = query.where(Alert.resolved_at.is_(None))
    with get_engine().connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
