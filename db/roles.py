"""Least-privilege PostgreSQL roles: `agents_migrator` owns the schema and runs migrations,
`agents_worker` reads and writes rows and can change nothing else.

Roles belong to the whole server, so an administrator (a role with CREATEROLE that may hand over
the schema; the local stack's `postgres`) runs this once per database, before the first
migration and again after any: `ensure_roles(admin_url, migrator_password, worker_password)`.
Every step is idempotent. Passwords reach the server only as SCRAM verifiers made on this side,
so no statement, and no server log of a failed one, ever carries them in clear.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

MIGRATOR = "agents_migrator"
WORKER = "agents_worker"
SCHEMA = "public"
# Workers read and write rows; no TRUNCATE, REFERENCES or TRIGGER, and no DDL (no CREATE on the
# schema, and only an owner may ALTER or DROP a table).
WORKER_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
# Alembic's bookkeeping: workers may read the revision (`agents doctor`), never move it.
READ_ONLY_TABLES = ("alembic_version",)


def ensure_roles(admin_url: str, migrator_password: str | None, worker_password: str | None) -> None:
    """Create or update both roles and their grants in `admin_url`'s database."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for role, password in ((MIGRATOR, migrator_password), (WORKER, worker_password)):
            _ensure_login_role(conn, role, password)
        for statement in _grants(conn):
            conn.execute(statement)


def _ensure_login_role(conn: psycopg.Connection, role: str, password: str | None) -> None:
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
    # NOSUPERUSER NOCREATEDB NOCREATEROLE: a stolen worker or migrator password reaches no further.
    statement = sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
        verb, sql.Identifier(role)
    )
    if password is not None:
        verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
        statement += sql.SQL(" PASSWORD {}").format(sql.Literal(verifier.decode()))
    conn.execute(statement)


def _grants(conn: psycopg.Connection) -> list[sql.Composed]:
    database = conn.execute("SELECT current_database()").fetchone()
    assert database is not None  # nosec B101 # narrows the type for mypy, not a check
    schema, migrator, worker = sql.Identifier(SCHEMA), sql.Identifier(MIGRATOR), sql.Identifier(WORKER)
    dml = sql.SQL(", ").join(sql.SQL(p) for p in WORKER_TABLE_PRIVILEGES)
    statements: list[sql.Composed] = [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(
            sql.Identifier(database[0]), migrator, worker
        ),
        # PostgreSQL < 15 lets every role create objects in public: nobody but its owner may.
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(schema),
        sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(schema, migrator),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, worker),
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(schema, worker),
    ]
    # Tables made before the roles existed (by an administrator) pass to the migrator, which must
    # be able to ALTER them in later migrations.
    for kind, relkinds in (("TABLE", "'r', 'p'"), ("SEQUENCE", "'S'")):
        query = sql.SQL(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ({}) AND pg_get_userbyid(c.relowner) <> %s"
        ).format(sql.SQL(relkinds))
        for (name,) in conn.execute(query, (SCHEMA, MIGRATOR)).fetchall():
            target = sql.Identifier(SCHEMA, name)
            statements.append(sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kind), target, migrator))
    statements += [
        sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(dml, schema, worker),
        sql.SQL("REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {} FROM {}").format(
            schema, worker
        ),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema, worker),
        # Tables and sequences that later migrations (run as the migrator) create get the same.
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON TABLES TO {}").format(
            migrator, schema, dml, worker
        ),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT USAGE, SELECT ON SEQUENCES TO {}"
        ).format(migrator, schema, worker),
    ]
    for table in READ_ONLY_TABLES:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{table}",)).fetchone()
        if exists and exists[0] is not None:
            statements.append(
                sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {} FROM {}").format(
                    sql.Identifier(SCHEMA, table), worker
                )
            )
    return statements
