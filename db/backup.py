"""Disaster recovery of the durable history: pg_dump / pg_restore, and per-table fingerprints.

The password reaches the child processes through PGPASSWORD only, never argv (visible in `ps`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess  # nosec B404 # pg_dump and pg_restore, argument lists, no shell
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, pool
from sqlalchemy.engine import make_url

from agents.errors import AgentsError
from agents.settings import get_settings
from agents.urls import masked
from db.models import Base

log = logging.getLogger(__name__)

# Not a model, but it says which schema the rows belong to: a restore must bring it back too.
ALEMBIC_TABLE = "alembic_version"


class BackupError(AgentsError):
    """A backup or restore could not run or failed; the message carries the tool's own error."""

    kind = "backup"


@dataclass(frozen=True)
class Command:
    """A pg_dump / pg_restore invocation: argv without secrets, the secret in the child's env."""

    argv: list[str]
    env: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class BackupReport:
    """What a backup or a restore did: the dump file, the database (masked) and its row counts."""

    path: Path
    url: str
    seconds: float
    size_bytes: int
    tables: dict[str, int]
    revision: str | None


def _pgserver_bin_dir() -> Path | None:
    """Where the pgserver package keeps its PostgreSQL binaries, when it is installed."""
    spec = importlib.util.find_spec("pgserver")  # located, not imported: its import warns
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def pg_binary(name: str) -> Path:
    """pgserver's bundled client when the package is installed, else `name` on PATH."""
    bin_dir = _pgserver_bin_dir()
    if bin_dir is not None and (bin_dir / name).exists():
        return bin_dir / name
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} not found: install the pgserver package (pip install pgserver) "
            f"or the PostgreSQL client tools so that {name} is on PATH"
        )
    return Path(found)


def libpq_target(url: str) -> tuple[str, str | None]:
    """DATABASE_URL as a libpq URI without its password (and without a +driver), and the password."""
    parsed = make_url(url)
    password = parsed.password
    # URL.set() skips None arguments, so only _replace drops the password.
    plain = parsed.set(drivername="postgresql")._replace(password=None)
    return plain.render_as_string(hide_password=False), None if password is None else str(password)


def _child_env(password: str | None) -> dict[str, str]:
    return {} if password is None else {"PGPASSWORD": password}


def dump_command(path: Path, url: str, binary: Path | str = "pg_dump") -> Command:
    """pg_dump in custom format (compressed, restorable table by table) into `path`."""
    target, password = libpq_target(url)
    argv = [str(binary), "--format=custom", "--no-password", f"--file={path}", f"--dbname={target}"]
    return Command(argv, _child_env(password))


def restore_command(
    path: Path, url: str, *, clean: bool = True, binary: Path | str = "pg_restore"
) -> Command:
    """pg_restore of `path` in one transaction: an error leaves the database as it was."""
    target, password = libpq_target(url)
    argv = [str(binary), "--single-transaction", "--exit-on-error", "--no-password"]
    if clean:  # drop each object of the dump first; IF EXISTS so an empty database works too
        argv += ["--clean", "--if-exists"]
    # The restoring role owns everything: the dump's roles may not exist on the target server.
    argv += ["--no-owner", "--no-privileges", f"--dbname={target}", str(path)]
    return Command(argv, _child_env(password))


def _run(command: Command, url: str) -> None:
    tool = Path(command.argv[0]).name
    log.info("%s of %s", tool, masked(url))
    done = subprocess.run(  # nosec B603 # argv built here from the URL's parts, no shell
        command.argv, env=os.environ | command.env, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    if done.returncode != 0:
        detail = done.stderr.strip() or done.stdout.strip() or "no output"
        raise BackupError(f"{tool} failed (exit {done.returncode}) for {masked(url)}: {detail}")


def _database_url(url: str | None) -> str:
    return url if url is not None else get_settings().database_url


def backup(path: Path, *, url: str | None = None) -> BackupReport:
    """Dump the database (default: DATABASE_URL) into `path`, replacing it only once complete."""
    url = _database_url(url)
    path = Path(path)
    if not path.parent.is_dir():
        raise BackupError(f"cannot write the dump to {path}: folder {path.parent} does not exist")
    started = time.monotonic()
    # A failed dump must never clobber the previous good one under the same name.
    partial = path.with_name(path.name + ".partial")
    try:
        _run(dump_command(partial, url, pg_binary("pg_dump")), url)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return _report(path, url, time.monotonic() - started)


def restore(path: Path, *, url: str | None = None, clean: bool = True) -> BackupReport:
    """Replace the database's tables (default: DATABASE_URL) with those of the dump at `path`."""
    url = _database_url(url)
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no dump file at {path}")
    started = time.monotonic()
    _run(restore_command(path, url, clean=clean, binary=pg_binary("pg_restore")), url)
    return _report(path, url, time.monotonic() - started)


def _report(path: Path, url: str, seconds: float) -> BackupReport:
    counts = row_counts(url)
    revision = _revision(url) if ALEMBIC_TABLE in counts else None
    return BackupReport(path, masked(url), seconds, path.stat().st_size, counts, revision)


def _engine(url: str) -> Engine:
    # Its own short-lived connection: the process's pool may point at another database.
    sqlalchemy_url = make_url(url).set(drivername="postgresql+psycopg")
    return create_engine(sqlalchemy_url, poolclass=pool.NullPool, connect_args={"connect_timeout": 5})


def _tables(engine: Engine) -> dict[str, list[str]]:
    """Every model table plus alembic_version that exists, with its primary key columns."""
    wanted = {
        name: [c.name for c in table.primary_key.columns] for name, table in Base.metadata.tables.items()
    }
    wanted[ALEMBIC_TABLE] = ["version_num"]
    existing = set(inspect(engine).get_table_names())
    return {name: keys for name, keys in sorted(wanted.items()) if name in existing}


def row_counts(url: str | None = None) -> dict[str, int]:
    """Rows per table (the platform's tables and alembic_version)."""
    engine = _engine(_database_url(url))
    try:
        quote = engine.dialect.identifier_preparer.quote
        with engine.connect() as connection:
            return {
                name: int(connection.exec_driver_sql(f"SELECT count(*) FROM {quote(name)}").scalar_one())  # nosec B608 # table names from the models, quoted
                for name in _tables(engine)
            }
    finally:
        engine.dispose()


def table_fingerprints(url: str | None = None) -> dict[str, tuple[int, str]]:
    """Per table: row count and md5 of its rows in primary-key order (equal data, equal prints)."""
    engine = _engine(_database_url(url))
    try:
        quote = engine.dialect.identifier_preparer.quote
        prints: dict[str, tuple[int, str]] = {}
        with engine.connect() as connection:
            for name, keys in _tables(engine).items():
                order = ", ".join(f"t.{quote(key)}" for key in keys)
                query = (
                    f"SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY {order})), '') "  # nosec B608 # names from the models, quoted
                    f"FROM {quote(name)} t"
                )
                count, digest = connection.exec_driver_sql(query).one()
                prints[name] = (int(count), str(digest))
        return prints
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            value = connection.exec_driver_sql(f"SELECT version_num FROM {ALEMBIC_TABLE}").scalar()  # nosec B608 # a constant table name
            return None if value is None else str(value)
    finally:
        engine.dispose()
