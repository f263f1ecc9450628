"""PostgreSQL's own figures for the exporter: connections by state and the server's limit."""

from __future__ import annotations

from sqlalchemy import text

from db.session import get_engine

_BY_STATE = text(
    "SELECT COALESCE(state, 'unknown'), COUNT(*) FROM pg_stat_activity "
    "WHERE datname = current_database() GROUP BY 1"
)


def connection_use() -> tuple[dict[str, int], int]:
    """Connections to this database by state (active, idle, ...), and max_connections."""
    with get_engine().connect() as connection:
        by_state = {str(state): int(count) for state, count in connection.execute(_BY_STATE)}
        maximum = int(connection.execute(text("SHOW max_connections")).scalar_one())
    return by_state, maximum
