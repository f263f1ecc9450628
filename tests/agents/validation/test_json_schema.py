"""JSON Schema checks (Draft 2020-12): every problem, with its field's path, sorted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.errors import InvalidRequest
from agents.validation.json_schema import json_schema_problems

SCHEMA = {
    "type": "object",
    "required": ["name", "data"],
    "properties": {
        "name": {"type": "string"},
        "data": {"type": "array", "items": {"type": "number"}, "minItems": 1},
        "limits": {"type": "object", "additionalProperties": {"type": "number", "exclusiveMinimum": 0}},
    },
}


def test_every_problem_sorted_by_field_in_natural_order() -> None:
    payload = {"data": [1, "x"] + [0] * 8 + ["y"], "limits": {"cpu": 0, "b": "z"}}
    assert json_schema_problems(SCHEMA, payload) == [
        {"field": "data.1", "problem": "'x' is not of type 'number'"},
        {"field": "data.10", "problem": "'y' is not of type 'number'"},
        {"field": "limits.b", "problem": "'z' is not of type 'number'"},
        {"field": "limits.cpu", "problem": "0 is less than or equal to the minimum of 0"},
        # A missing property is named itself, not its parent object.
        {"field": "name", "problem": "'name' is a required property"},
    ]


def test_a_valid_payload_has_no_problem() -> None:
    assert json_schema_problems(SCHEMA, {"name": "n", "data": [1.5], "limits": {"cpu": 1}}) == []


def test_a_problem_of_the_whole_payload_is_named_root() -> None:
    assert json_schema_problems(SCHEMA, [1]) == [
        {"field": "(root)", "problem": "[1] is not of type 'object'"}
    ]


def test_local_references_resolve() -> None:
    schema = {"$defs": {"n": {"type": "number"}}, "type": "array", "items": {"$ref": "#/$defs/n"}}
    assert json_schema_problems(schema, [1, None]) == [
        {"field": "1", "problem": "None is not of type 'number'"}
    ]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([], "schema: a JSON Schema must be an object, got list"),
        (
            {"type": 12},
            "schema is not a valid JSON Schema (Draft 2020-12): at type: 12 is not valid under any",
        ),
        ({"minItems": -1}, "schema is not a valid JSON Schema (Draft 2020-12): at minItems: -1 is less than"),
        (
            {"pattern": "("},
            "schema is not a valid JSON Schema (Draft 2020-12): at pattern: '(' is not a 'regex'",
        ),
        # Remote references are never fetched (no I/O): the schema is refused instead.
        ({"$ref": "https://example.com/s.json"}, "schema: cannot resolve $ref: "),
        ({"$ref": "#/$defs/missing"}, "schema: cannot resolve $ref: "),
    ],
)
def test_a_bad_schema_is_an_invalid_request(schema: object, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        json_schema_problems(schema, {})
    assert str(caught.value).startswith(message)


@given(st.dictionaries(st.text(min_size=1), st.floats(allow_nan=False), max_size=10))
def test_any_object_of_numbers_passes_a_numbers_schema(payload: dict[str, float]) -> None:
    schema = {"type": "object", "additionalProperties": {"type": "number"}}
    assert json_schema_problems(schema, payload) == []


@given(st.lists(st.integers(), min_size=1, max_size=20), st.data())
def test_a_string_at_index_i_is_named_i(values: list[int], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(values) - 1))
    bad: list[object] = list(values)
    bad[index] = data.draw(st.text())
    problems = json_schema_problems({"type": "array", "items": {"type": "integer"}}, bad)
    assert [p["field"] for p in problems] == [str(index)]
