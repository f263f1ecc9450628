"""The `validation` capability's pure logic: which declared schema, the verdict, clear refusals."""

from __future__ import annotations

from typing import Any

import pytest

from agents.engines import builtin_engines
from agents.errors import InvalidRequest
from agents.registry import engine_card
from agents.validation.request import Declared, ValidationRequest, answer, choose_schema, validation_report

# What the engine cards of the built-in fleet declare, plus an engine that declares nothing.
DECLARED: Declared = {e.name: engine_card(e, 1).schemas for e in builtin_engines()} | {"flaky": {}}


def report(body: dict[str, Any], declared: Declared = DECLARED) -> dict[str, Any]:
    return validation_report(ValidationRequest.model_validate(body), declared)


def test_a_bad_performance_payload_lists_every_problem() -> None:
    payload = {"metrics": {"cpu": [1, "x"], "mem": []}, "thresholds": {"cpu": "high"}}
    assert report({"engine": "performance", "payload": payload}) == {
        "valid": False,
        "task_type": "default",
        "engine": "performance",
        "errors": [
            {"field": "metrics.cpu.1", "problem": "'x' is not of type 'number'"},
            {"field": "metrics.mem", "problem": "[] should be non-empty"},
            {"field": "thresholds.cpu", "problem": "'high' is not of type 'number'"},
        ],
    }


def test_a_good_payload_is_valid() -> None:
    body = {"engine": "optimization", "task_type": "default", "payload": {"snapshot": {"cpu_percent": 3}}}
    assert report(body) == {"valid": True, "task_type": "default", "engine": "optimization", "errors": []}


def test_an_engine_falls_back_to_its_default_schema_as_it_would_itself() -> None:
    result = report({"engine": "analysis", "task_type": "series", "payload": {}})
    assert result["errors"] == [{"field": "data", "problem": "'data' is a required property"}]


def test_the_one_engine_declaring_a_task_type_is_found() -> None:
    declared = {**DECLARED, "counter": {"strict": {"type": "object", "required": ["count"]}}}
    assert report({"task_type": "strict", "payload": {"count": 1}}, declared)["engine"] == "counter"


def test_an_inline_schema_needs_no_card() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert answer({"schema": schema, "payload": {"n": "x"}}, read_declared=_no_cards) == {
        "valid": False,
        "task_type": None,
        "engine": None,
        "errors": [{"field": "n", "problem": "'x' is not of type 'integer'"}],
    }


def _no_cards() -> Declared:
    raise AssertionError("an inline schema must not read the engine cards")


@pytest.mark.parametrize(
    ("task_type", "engine", "message"),
    [
        (
            "default", None,
            "task_type 'default' is declared by several engines (analysis, optimization, performance): "
            "name one in `engine`",
        ),
        (
            "nope", None,
            "task_type: no engine declares a payload schema for 'nope'; "
            "declared: analysis: default, validation:default; optimization: default; performance: default",
        ),
        (
            "default", "flaky",
            "engine 'flaky' declares no payload schema for task_type 'default' (it declares: none)",
        ),
        (
            "default", "ghost",
            "engine: no engine 'ghost' has announced itself; "
            "known: analysis, flaky, intelligence, optimization, performance",
        ),
    ],
)  # fmt: skip
def test_no_or_several_schemas_name_the_choices(task_type: str, engine: str | None, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        choose_schema(DECLARED, task_type, engine)
    assert str(caught.value) == message


def test_a_schema_and_a_task_type_together_are_refused() -> None:
    with pytest.raises(ValueError, match="give either schema, or task_type and engine, not both"):
        ValidationRequest.model_validate({"schema": {}, "task_type": "x", "payload": {}})


def test_an_invalid_declared_schema_names_whose_it_is() -> None:
    declared = {"broken": {"default": {"type": "nonsense"}}}
    with pytest.raises(InvalidRequest) as caught:
        report({"engine": "broken", "payload": {}}, declared)
    assert str(caught.value).startswith(
        "the schema of task_type 'default' of engine 'broken' "
        "is not a valid JSON Schema (Draft 2020-12): at type:"
    )
