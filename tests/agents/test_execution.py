"""One request through an engine in this process: the payload is checked before the handler."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from agents import AgentConfig, BaseAgent, TaskRequest
from agents.engines.analysis import AnalysisEngine
from agents.errors import InvalidRequest
from agents.execution import execute


class Job(BaseModel):
    size: int = Field(gt=0)
    mode: str = "fast"


class Recording(BaseAgent):
    """Keeps every payload its handler saw."""

    config = AgentConfig(name="recording", capabilities=["jobs", "other"])
    payload_schemas = {"job": Job}

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, Any]] = []

    async def _handle_task(self, task_request: TaskRequest) -> Any:
        self.seen.append(task_request.payload)
        return {"task_type": task_request.task_type}


def test_the_handler_gets_the_validated_payload_with_defaults() -> None:
    engine = Recording()
    assert execute(engine, {"task_type": "job", "payload": {"size": "3"}}, task_id="t1") == {
        "task_type": "job"
    }
    assert engine.seen == [{"size": 3, "mode": "fast"}]


def test_a_bad_payload_never_reaches_the_handler() -> None:
    engine = Recording()
    with pytest.raises(InvalidRequest) as caught:
        execute(engine, {"task_type": "job", "payload": {"size": 0, "mode": 1}}, task_id="t2")
    assert str(caught.value) == (
        "payload invalid for task_type 'job' of engine 'recording': "
        "size: Input should be greater than 0; mode: Input should be a valid string"
    )
    assert engine.seen == [] and engine.metrics.tasks_received == 0


def test_a_task_type_without_a_schema_takes_any_payload() -> None:
    engine = Recording()
    execute(engine, {"payload": {"anything": [1, None]}}, task_id="t3")
    assert engine.seen == [{"anything": [1, None]}]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({}, "payload: Field required"),
        ({"schema": [], "payload": {}}, "schema: Input should be a valid dictionary"),
        ({"schemas": {}, "payload": {}}, "schemas: Extra inputs are not permitted"),
        ({"schema": {}, "engine": "performance", "payload": {}}, "(root): Value error, give either schema"),
    ],
)
def test_a_malformed_validation_request_is_refused(payload: dict[str, Any], problem: str) -> None:
    request = {"capability": "validation", "payload": payload}
    with pytest.raises(InvalidRequest) as caught:
        execute(AnalysisEngine(), request, task_id="t4")
    prefix = "payload invalid for capability 'validation', task_type 'default' of engine 'analysis': "
    assert str(caught.value).startswith(prefix + problem)


def test_an_inline_schema_is_checked_by_the_analysis_engine() -> None:
    request = {"capability": "validation", "payload": {"schema": {"type": "string"}, "payload": 5}}
    assert execute(AnalysisEngine(), request, task_id="t5") == {
        "valid": False, "task_type": None, "engine": None,
        "errors": [{"field": "(root)", "problem": "5 is not of type 'string'"}],
    }  # fmt: skip
    bad_schema = {"capability": "validation", "payload": {"schema": {"type": "text"}, "payload": 5}}
    with pytest.raises(
        InvalidRequest, match=r"^schema is not a valid JSON Schema \(Draft 2020-12\): at type: "
    ):
        execute(AnalysisEngine(), bad_schema, task_id="t6")
