"""Parameterised SQL for engines (`BaseAgent._db_fetch` / `_db_execute`), on the shared pool.

Accepts the seed's asyncpg style (`$1, $2` with positional arguments) and SQLAlchemy's named
style (`:name` with one dict). Values are always bound, never formatted into the SQL.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text

from db.session import get_engine

_POSITIONAL = re.compile(r"\$(\d+)")


def bind(query: str, args: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    """Turn `$n` placeholders and positional args into named binds."""
    if len(args) == 1 and isinstance(args[0], dict):
        return query, dict(args[0])
    numbers = {int(n) for n in _POSITIONAL.findall(query)}
    if numbers != set(range(1, len(args) + 1)):
        raise ValueError(f"query uses placeholders {sorted(numbers)} but {len(args)} argument(s) were given")
    return _POSITIONAL.sub(lambda m: f":p{m.group(1)}", query), {f"p{i}": v for i, v in enumerate(args, 1)}


def fetch(query: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Run a query and return its rows as dicts."""
    sql, params = bind(query, args)
    with get_engine().connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text(sql), params)]


def execute(query: str, args: tuple[Any, ...]) -> int:
    """Run a statement in its own transaction; returns the affected row count."""
    sql, params = bind(query, args)
    with get_engine().begin() as connection:
        return int(connection.execute(text(sql), params).rowcount)
