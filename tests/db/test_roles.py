"""Least-privilege PostgreSQL roles (db/roles.py): the migrator builds the schema, the worker writes
rows through the platform's own code and can neither change nor empty a table.

Runs in a database of its own on the session PostgreSQL, so the session's database and the role
its connections use are left as they were.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from agents.settings import get_settings
from agents.stack.servers import ServerProcess
from db.roles import MIGRATOR, WORKER, ensure_roles

pytestmark = pytest.mark.servers
DATABASE = "roles_check"
MIGRATOR_PASSWORD = "migrator-" + "Vt3pQx81"
WORKER_PASSWORD = "worker-" + "Hm6sRa27"
APP_TABLES = {"task_results", "alerts", "insights", "optimization_actions", "health_reports", "task_claims"}


def _url(server: ServerProcess, user: str, password: str | None = None) -> str:
    auth = f"{user}:{password}" if password else user
    return f"postgresql://{auth}@127.0.0.1:{server.port}/{DATABASE}"


@pytest.fixture(scope="module")
def roles_database(postgres_server: ServerProcess) -> Iterator[ServerProcess]:
    """A fresh database with both roles, migrated as the migrator; dropped afterwards."""
    admin_url = postgres_server.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    yield postgres_server
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


@pytest.fixture()
def as_role(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Point the settings (and db.session's pool) at other URLs, restoring the session's after."""
    from db.session import reset_engine

    yield monkeypatch
    reset_engine()
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_engine()


def _use(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    from db.session import reset_engine

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    reset_engine()


def test_migrator_builds_the_schema_the_worker_cannot(
    roles_database: ServerProcess, as_role: pytest.MonkeyPatch
) -> None:
    from db import migrate

    admin = _url(roles_database, "postgres")
    ensure_roles(admin, MIGRATOR_PASSWORD, WORKER_PASSWORD)
    worker_url = _url(roles_database, WORKER, WORKER_PASSWORD)
    # No DATABASE_MIGRATIONS_URL: migrations run as DATABASE_URL's role, here the worker: refused.
    as_role.delenv("DATABASE_MIGRATIONS_URL", raising=False)
    _use(as_role, DATABASE_URL=worker_url)
    with pytest.raises(Exception, match="permission denied for schema public"):
        migrate.upgrade("head")
    _use(as_role, DATABASE_MIGRATIONS_URL=_url(roles_database, MIGRATOR, MIGRATOR_PASSWORD))
    migrate.upgrade("head")
    assert migrate.current() is not None  # read as the worker
    ensure_roles(admin, MIGRATOR_PASSWORD, WORKER_PASSWORD)  # idempotent: a second run changes nothing
    with psycopg.connect(admin) as conn:
        owners: dict[str, str] = dict(
            conn.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall()
        )
        schema_owner = conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'"
        ).fetchone()
    assert set(owners) >= APP_TABLES | {"alembic_version"}
    assert set(owners.values()) == {MIGRATOR} and schema_owner == (MIGRATOR,)


def test_worker_has_row_privileges_on_every_table_and_nothing_more(roles_database: ServerProcess) -> None:
    query = (
        "SELECT c.relname, p FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, "
        "unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p "
        "WHERE n.nspname = 'public' AND c.relkind = 'r' AND has_table_privilege(%s, c.oid, p)"
    )
    with psycopg.connect(_url(roles_database, "postgres")) as conn:
        granted: dict[str, set[str]] = {}
        for table, privilege in conn.execute(query, (WORKER,)).fetchall():
            granted.setdefault(table, set()).add(privilege)
        attributes = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname IN (%s, %s)",
            (WORKER, MIGRATOR),
        ).fetchall()
    assert {t: granted.get(t) for t in APP_TABLES} == {
        t: {"SELECT", "INSERT", "UPDATE", "DELETE"} for t in APP_TABLES
    }
    assert granted["alembic_version"] == {"SELECT"}
    assert attributes == [(False, False, False)] * 2


def test_worker_writes_through_the_platform_and_every_ddl_is_refused(
    roles_database: ServerProcess, as_role: pytest.MonkeyPatch
) -> None:
    from db import claims, history, maintenance

    worker_url = _url(roles_database, WORKER, WORKER_PASSWORD)
    _use(as_role, DATABASE_URL=worker_url)
    task_id = f"roles-{time.time_ns()}"
    now = time.time()
    # The history writer's upsert (INSERT ... ON CONFLICT DO UPDATE), twice, as workers run it.
    first = {
        "task_id": task_id,
        "created_at": now,
        "status": "processing",
        "status_at": now,
        "started_at": now,
    }
    history.upsert([first])
    history.upsert([first | {"status": "success", "status_at": now + 1, "finished_at": now + 1}])
    assert (history.get(task_id) or {})["status"] == "success"
    assert claims.claim(task_id, "publish-1") is True
    assert maintenance.store_health_report({"healthy": True}) > 0
    maintenance.delete_older_than(days=1, batch_size=100)

    refused = {
        "DROP TABLE task_results": "must be owner of table task_results",
        "ALTER TABLE task_results ADD COLUMN sneaky integer": "must be owner of table task_results",
        "CREATE TABLE sneaky (id integer)": "permission denied for schema public",
        "TRUNCATE task_results": "permission denied for table task_results",
        "CREATE INDEX sneaky ON task_results (worker)": "must be owner of table task_results",
        "UPDATE alembic_version SET version_num = 'x'": "permission denied for table alembic_version",
    }
    with psycopg.connect(worker_url, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (WORKER,)
        for statement, message in refused.items():
            with pytest.raises(errors.InsufficientPrivilege, match=message):
                conn.execute(statement)
        assert conn.execute(
            "SELECT count(*) FROM task_results WHERE task_id = %s", (task_id,)
        ).fetchone() == (1,)
