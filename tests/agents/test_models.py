"""Request and engine configuration validation: no servers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents import AgentConfig, Priority, TaskRequest
from agents.errors import InvalidRequest
from agents.execution import parse_request


def test_priority_accepts_names_and_numbers() -> None:
    assert TaskRequest(capability="a", priority="high").priority is Priority.HIGH
    assert TaskRequest(capability="a", priority=4).priority is Priority.CRITICAL


def test_unknown_priority_lists_the_choices() -> None:
    with pytest.raises(ValidationError, match="use one of low, normal, high, critical"):
        TaskRequest(capability="a", priority="urgent")


def test_higher_priority_is_served_first_by_redis() -> None:
    ordered = sorted(Priority, key=lambda p: p.broker_priority)
    assert ordered == [Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW]


def test_parse_request_names_every_bad_field() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request({"payload": [], "timeout": -1}, task_id="t1")
    message = str(caught.value)
    assert "capability: Field required" in message
    assert "payload: Input should be a valid dictionary" in message
    assert "timeout: Input should be greater than 0" in message


def test_parse_request_rejects_unknown_fields() -> None:
    with pytest.raises(InvalidRequest, match="colour: Extra inputs are not permitted"):
        parse_request({"capability": "a", "colour": "red"}, task_id="t1")


def test_parse_request_uses_the_celery_task_id() -> None:
    assert parse_request({"capability": "a", "task_id": "mine"}, task_id="celery-id").task_id == "celery-id"


def test_parse_request_rejects_non_objects() -> None:
    with pytest.raises(InvalidRequest, match="expected a JSON object, got str"):
        parse_request("analysis", task_id="t1")


def test_agent_config_accepts_the_seed_fields() -> None:
    config = AgentConfig(
        agent_id="my-engine-001", name="my_engine", agent_type="custom",
        capabilities=["processing", "analysis"], nats_url="nats://nats:4222",
        postgres_url="postgresql://user@postgres/agents_db",
        max_concurrent_tasks=200, queue_size=5000, task_timeout_seconds=30,
    )  # fmt: skip
    assert config.name == "my_engine"
    assert "postgres_url" not in config.model_dump()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": "My Engine", "capabilities": ["a"]}, "name"),
        ({"name": "x", "capabilities": []}, "capabilities"),
        ({"name": "x", "capabilities": ["a"], "max_concurrent_tasks": 0}, "max_concurrent_tasks"),
        ({"name": "x", "capabilities": ["a"], "pool": "fork"}, "pool"),
    ],
)
def test_agent_config_errors_name_the_field(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        AgentConfig(**fields)
