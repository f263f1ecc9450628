"""Apply Alembic migrations programmatically (`agents migrate`, `make run`, test fixtures)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from agents.settings import get_settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """Alembic configuration pointing at db/migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(revision: str = "head") -> None:
    """Migrate the database up to `revision`, as DATABASE_MIGRATIONS_URL's role."""
    _as_migrator(command.upgrade, revision)


def downgrade(revision: str) -> None:
    """Migrate the database down to `revision` (`base` empties it)."""
    _as_migrator(command.downgrade, revision)


def _as_migrator(step: Callable[[Config, str], None], revision: str) -> None:
    # The schema's owner runs DDL (DATABASE_MIGRATIONS_URL); workers keep a role that cannot
    # (db/roles.py). Falls back to DATABASE_URL when no migrations URL is set.
    engine = create_engine(get_settings().migrations_sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection  # db/migrations/env.py uses it
            step(config, revision)
    finally:
        engine.dispose()


def current() -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from sqlalchemy import inspect

    from db.session import get_engine

    with get_engine().connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
