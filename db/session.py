"""The pooled SQLAlchemy engine of this process, sized from the settings."""

from __future__ import annotations

import os
from functools import lru_cache

from sqlalchemy import Engine, create_engine

from agents.settings import get_settings


@lru_cache(maxsize=4)
def _engine_for_pid(pid: int) -> Engine:
    settings = get_settings()
    return create_engine(
        settings.sqlalchemy_url,
        pool_size=settings.db_pool_max_size,
        max_overflow=settings.db_pool_overflow,
        # A connection that died with a PostgreSQL restart is replaced, not handed out.
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": f"agents-{pid}"},
    )


def get_engine() -> Engine:
    """This process's engine; a forked child gets its own pool instead of sharing sockets."""
    return _engine_for_pid(os.getpid())


def reset_engine() -> None:
    """Close this process's pool and forget it (after DATABASE_URL changed, or at shutdown)."""
    if _engine_for_pid.cache_info().currsize:
        get_engine().dispose()
    _engine_for_pid.cache_clear()
