"""Alembic environment: the URL comes from the settings, the schema from db.models."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from agents.settings import get_settings
from db.models import Base

target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """Emit SQL without a connection (`alembic upgrade --sql`)."""
    context.configure(url=get_settings().sqlalchemy_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply migrations on a fresh connection."""
    connectable = context.config.attributes.get("connection")
    if connectable is None:
        engine = create_engine(get_settings().sqlalchemy_url, poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
