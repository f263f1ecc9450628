"""DATABASE_URL as SQLAlchemy gets it: psycopg 3 named, a libpq multi-host URL in the form it parses."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url

from agents.settings import Settings, _with_psycopg

PAIR = "postgresql://postgres@10.0.0.1:5432,10.0.0.2:5433/agents?target_session_attrs=read-write"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://postgres@127.0.0.1:5432/agents",
            "postgresql+psycopg://postgres@127.0.0.1:5432/agents",
        ),
        ("postgres://u:p@h/db?sslmode=require", "postgresql+psycopg://u:p@h/db?sslmode=require"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        (
            PAIR,
            "postgresql+psycopg://postgres@/agents"
            "?host=10.0.0.1:5432&host=10.0.0.2:5433&target_session_attrs=read-write",
        ),
        ("postgresql://u:p%40w@h1,h2/db", "postgresql+psycopg://u:p%40w@/db?host=h1&host=h2"),
    ],
)
def test_psycopg_is_named_and_several_hosts_become_host_parameters(url: str, expected: str) -> None:
    assert _with_psycopg(url) == expected


def test_sqlalchemy_hands_libpq_every_host_of_a_multi_host_url() -> None:
    # Unconverted, SQLAlchemy cannot parse it at all (the port "5432,10.0.0.2:5433").
    with pytest.raises(ValueError):
        make_url(PAIR.replace("postgresql://", "postgresql+psycopg://"))
    _, kwargs = PGDialect_psycopg().create_connect_args(make_url(Settings(database_url=PAIR).sqlalchemy_url))
    assert kwargs["host"] == "10.0.0.1,10.0.0.2"
    assert kwargs["port"] == "5432,5433"
    assert kwargs["target_session_attrs"] == "read-write"
    assert (kwargs["dbname"], kwargs["user"]) == ("agents", "postgres")
