"""Apply Alembic migrations programmatically (`agents migrate`, `make run`, test fixtures)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """Alembic configuration pointing at db/migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(revision: str = "head") -> None:
    """Migrate the database up to `revision`."""
    command.upgrade(alembic_config(), revision)


def downgrade(revision: str) -> None:
    """Migrate the database down to `revision` (`base` empties it)."""
    command.downgrade(alembic_config(), revision)


def current() -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from sqlalchemy import inspect

    from db.session import get_engine

    with get_engine().connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
