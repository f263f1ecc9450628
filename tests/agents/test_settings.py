"""The one settings object: environment, stack file, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agents.settings import Settings


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
