"""Alembic migrations up and down on an empty database."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from agents.settings import get_settings
from tests.agents.test_cli_history import head_revision

pytestmark = pytest.mark.servers
TABLES = {"task_results", "alerts", "insights", "optimization_actions", "health_reports", "task_claims"}


def test_up_down_up_on_an_empty_database(postgres_server, monkeypatch: pytest.MonkeyPatch) -> None:
    from db import migrate
    from db.session import reset_engine

    admin = create_engine(get_settings().sqlalchemy_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql("DROP DATABASE IF EXISTS migration_check")
        connection.exec_driver_sql("CREATE DATABASE migration_check")
    url = postgres_server.url.rsplit("/", 1)[0] + "/migration_check"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    reset_engine()
    try:
        check = create_engine(get_settings().sqlalchemy_url)
        assert migrate.current() is None
        migrate.upgrade("head")
        assert set(inspect(check).get_table_names()) >= TABLES
        indexes = {i["name"] for i in inspect(check).get_indexes("task_results")}
        assert "ix_task_results_processing_started_at" in indexes
        migrate.downgrade("base")
        assert set(inspect(check).get_table_names()) == {"alembic_version"}
        migrate.upgrade("head")
        assert migrate.current() == head_revision()
        check.dispose()
    finally:
        reset_engine()
        monkeypatch.undo()
        get_settings.cache_clear()
    admin.dispose()
