"""The one settings object: environment, stack file, validation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from agents.settings import Settings
from agents.urls import masked
from tests.conftest import ROOT


def test_stack_file_fills_what_the_environment_leaves_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NATS_URL", raising=False)
    stack = tmp_path / "stack.env"
    stack.write_text("NATS_URL=nats://127.0.0.1:9999\nREDIS_URL=redis://from-file:1/0\n")
    settings = Settings(_env_file=stack)
    assert settings.nats_url == "nats://127.0.0.1:9999"
    # The environment wins over the file (conftest exported REDIS_URL).
    assert settings.redis_url.startswith("redis://127.0.0.1:")


def test_seed_variable_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_TASK_TIMEOUT_SECONDS", "600")
    monkeypatch.setenv("DB_POOL_MAX_SIZE", "30")
    monkeypatch.setenv("TRAFFIC_ROUTE", "old_system")
    settings = Settings(_env_file=None)
    assert (settings.agent_task_timeout_seconds, settings.db_pool_max_size) == (600, 30)
    assert settings.traffic_route == "old_system"


def test_bad_engine_path_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_ENGINES", "good.module:engine, missing_colon")
    with pytest.raises(ValidationError, match="'missing_colon' must look like 'package.module:name'"):
        Settings(_env_file=None)


def test_bad_traffic_route_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAFFIC_ROUTE", "both")
    with pytest.raises(ValidationError, match="traffic_route"):
        Settings(_env_file=None)


def test_heartbeat_ttl_must_outlive_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTBEAT_INTERVAL_SECONDS", "5")
    monkeypatch.setenv("HEARTBEAT_TTL_SECONDS", "5")
    with pytest.raises(ValidationError, match="HEARTBEAT_TTL_SECONDS must be longer"):
        Settings(_env_file=None)


def test_migrations_url_falls_back_to_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://agents_worker:w@db:5432/agents")
    monkeypatch.delenv("DATABASE_MIGRATIONS_URL", raising=False)
    settings = Settings(_env_file=None)
    assert settings.migrations_sqlalchemy_url == "postgresql+psycopg://agents_worker:w@db:5432/agents"
    monkeypatch.setenv("DATABASE_MIGRATIONS_URL", "postgres://agents_migrator:m@db:5432/agents")
    settings = Settings(_env_file=None)
    assert settings.migrations_sqlalchemy_url == "postgresql+psycopg://agents_migrator:m@db:5432/agents"
    assert settings.sqlalchemy_url == "postgresql+psycopg://agents_worker:w@db:5432/agents"


TLS_URL = "rediss://:tls-s3cret@redis.example:6380/0?ssl_cert_reqs=required"
# What the platform's clients make of REDIS_URL (no connection is opened: the host does not exist).
TLS_CLIENTS = """
import ssl
from agents.connections import redis_client
from tasks import app
backend = app.backend.connparams
broker = app.connection_for_write()
print(redis_client().connection_pool.connection_class.__name__)
print(backend["connection_class"].__name__, backend["ssl_cert_reqs"] == ssl.CERT_REQUIRED)
print(broker.as_uri(), broker.ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED})
"""


def test_a_tls_redis_url_is_accepted_and_reaches_every_client() -> None:
    """Production points REDIS_URL at a TLS Redis (rediss://): the settings keep it, URLs print it
    masked, and the redis-py client, Celery's result backend and kombu's broker connection all
    speak TLS with certificate checks; the broker keeps the reliable fetch (its transport's name
    is the printed scheme). The round trip: tests/agents/test_redis_tls.py."""
    assert Settings(_env_file=None, redis_url=TLS_URL).redis_url == TLS_URL
    assert masked(TLS_URL) == "rediss://:***@redis.example:6380/0?ssl_cert_reqs=required"
    env = os.environ | {"REDIS_URL": TLS_URL}
    done = subprocess.run(
        [sys.executable, "-c", TLS_CLIENTS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        "SSLConnection",
        "SSLConnection True",
        "tasks.transport:Transport://:**@redis.example:6380/0 True",
    ]
