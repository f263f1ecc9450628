"""Disaster recovery drill: back up a populated database, lose it, restore it, compare every table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import create_engine, insert, pool
from sqlalchemy.engine import make_url

from agents.settings import get_settings
from db import backup as recovery
from db.migrate import alembic_config
from db.models import Alert, Insight, TaskResult

pytestmark = pytest.mark.servers
SECRET_URL = "postgresql+psycopg://agents:s3cr%40t-pw@db.example:5433/agents?sslmode=require"


def _engine(url: str, *, autocommit: bool = False):
    level = "AUTOCOMMIT" if autocommit else "READ COMMITTED"  # CREATE/DROP DATABASE refuse a transaction
    return create_engine(
        make_url(url).set(drivername="postgresql+psycopg"), isolation_level=level, poolclass=pool.NullPool
    )


def _recreate_empty(server_url: str, name: str) -> None:
    """The disaster: the database is gone; an operator creates it again, empty."""
    admin = _engine(server_url, autocommit=True)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()


@pytest.fixture()
def drill_url(postgres_server) -> Iterator[str]:
    """A database of its own, migrated to head: the drill never touches the one other tests use."""
    name = f"drill_{uuid.uuid4().hex[:10]}"
    server_url = get_settings().database_url
    _recreate_empty(server_url, name)
    url = server_url.rsplit("/", 1)[0] + "/" + name
    engine = _engine(url)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection  # env.py migrates this connection, not DATABASE_URL
        command.upgrade(config, "head")
    engine.dispose()
    yield url
    admin = _engine(server_url, autocommit=True)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


def _populate(url: str, rows: int = 40) -> None:
    now = datetime.now(UTC)
    results = [
        {
            "task_id": f"drill-{i:04d}", "task_name": "agents.engine.analysis", "capability": "analysis",
            "engine": "analysis", "status": "failed" if i % 7 == 0 else "success", "priority": 1 + i % 4,
            "payload": {"data": [i, i * 0.5, None], "note": "naïve ✓"}, "result": {"mean": i / 3},
            "error": "boom\nline two" if i % 7 == 0 else None, "retries": i % 3, "runtime": i / 1000,
            "created_at": now - timedelta(minutes=i), "status_at": now,
        }
        for i in range(rows)
    ]  # fmt: skip
    alerts = [
        {"engine": "performance", "name": f"cpu_high_{i}", "severity": "warning", "message": f"cpu {90 + i}%",
         "labels": {"host": f"h{i}"}, "resolved_at": now if i % 2 else None}
        for i in range(rows // 4)
    ]  # fmt: skip
    insights = [
        {"engine": "analysis", "kind": "latency_regression", "summary": f"slower by {i}x",
         "subject": "analysis", "data": {"z": i + 0.25}, "severity": "critical" if i % 3 == 0 else "info"}
        for i in range(rows // 5)
    ]  # fmt: skip
    engine = _engine(url)
    with engine.begin() as connection:
        connection.execute(insert(TaskResult), results)
        connection.execute(insert(Alert), alerts)
        connection.execute(insert(Insight), insights)
    engine.dispose()


def test_drill_backup_drop_restore_gives_back_every_row(drill_url: str, tmp_path: Path) -> None:
    _populate(drill_url)
    before = recovery.table_fingerprints(drill_url)
    assert before["task_results"][0] == 40 and before["alerts"][0] == 10 and before["insights"][0] == 8
    assert before["alembic_version"][0] == 1 and before["task_results"][1] != ""

    dump = tmp_path / "drill.dump"
    report = recovery.backup(dump, url=drill_url)
    assert report.size_bytes > 0 and report.tables["task_results"] == 40 and report.revision
    assert not list(tmp_path.glob("*.partial"))

    server_url = drill_url.rsplit("/", 1)[0] + "/agents"
    _recreate_empty(server_url, drill_url.rsplit("/", 1)[1])
    assert recovery.table_fingerprints(drill_url) == {}

    restored = recovery.restore(dump, url=drill_url)
    assert recovery.table_fingerprints(drill_url) == before
    assert restored.revision == report.revision and restored.tables == report.tables

    # Restoring over a database that moved on (--clean) brings back exactly the dump's rows.
    engine = _engine(drill_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM alerts WHERE mod(id, 2) = 0")
        connection.exec_driver_sql("UPDATE task_results SET status = 'revoked' WHERE task_id = 'drill-0001'")
    engine.dispose()
    assert recovery.table_fingerprints(drill_url) != before
    recovery.restore(dump, url=drill_url)
    assert recovery.table_fingerprints(drill_url) == before


def test_missing_or_broken_dumps_and_a_failing_pg_dump_are_clear_errors(
    drill_url: str, tmp_path: Path
) -> None:
    with pytest.raises(recovery.BackupError, match="no dump file at .*nothing.dump"):
        recovery.restore(tmp_path / "nothing.dump", url=drill_url)
    garbage = tmp_path / "garbage.dump"
    garbage.write_text("not a dump")
    with pytest.raises(recovery.BackupError, match=r"pg_restore failed \(exit 1\).*valid archive"):
        recovery.restore(garbage, url=drill_url)
    gone = drill_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(recovery.BackupError, match=r"(?s)pg_dump failed .*no_such_database.*does not exist"):
        recovery.backup(tmp_path / "gone.dump", url=gone)
    assert not (tmp_path / "gone.dump").exists() and not (tmp_path / "gone.dump.partial").exists()
    with pytest.raises(recovery.BackupError, match="folder .* does not exist"):
        recovery.backup(tmp_path / "missing" / "x.dump", url=drill_url)


def test_restore_refuses_without_yes_and_the_cli_reports_a_missing_file(tmp_path: Path) -> None:
    from agents.cli import main
    from agents.cli_backup import restore

    assert {"backup", "restore"} <= set(main.commands)
    refused = CliRunner().invoke(restore, [str(tmp_path / "x.dump")])
    assert refused.exit_code == 1 and "--yes" in refused.output and "replaces every table" in refused.output
    missing = CliRunner().invoke(restore, [str(tmp_path / "x.dump"), "--yes"])
    assert missing.exit_code == 1 and f"no dump file at {tmp_path / 'x.dump'}" in missing.output


def test_the_password_is_in_the_child_environment_never_in_argv() -> None:
    for built in (
        recovery.dump_command(Path("/backups/a.dump"), SECRET_URL),
        recovery.restore_command(Path("/backups/a.dump"), SECRET_URL),
    ):
        line = " ".join(built.argv)
        assert "s3cr" not in line and "s3cr" not in repr(built)
        assert built.env == {"PGPASSWORD": "s3cr@t-pw"}
        assert "--dbname=postgresql://agents@db.example:5433/agents?sslmode=require" in built.argv
    assert recovery.dump_command(Path("a"), "postgresql://postgres@h/agents").env == {}


def test_a_missing_client_binary_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(recovery, "_pgserver_bin_dir", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no pg_dump on PATH either
    with pytest.raises(recovery.BackupError, match="pg_dump not found: install the pgserver package"):
        recovery.pg_binary("pg_dump")
