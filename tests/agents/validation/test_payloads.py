"""Payload models per task_type: which one applies, and one error naming every bad field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from agents.errors import InvalidRequest
from agents.validation.payloads import (
    DEFAULT_TASK_TYPE,
    check_payload,
    for_capability,
    json_schemas,
    schema_key,
)


class Series(BaseModel):
    data: list[float] = Field(min_length=1)
    z_limit: float = Field(3.0, gt=0)


class Report(BaseModel):
    title: str


class Question(BaseModel):
    payload: dict[str, int]


SCHEMAS: dict[str, type[BaseModel]] = {"default": Series, "report": Report, for_capability("ask"): Question}


def check(payload: object, task_type: str = "default", capability: str = "analysis") -> dict | None:
    return check_payload(
        SCHEMAS, engine="analysis", capability=capability, task_type=task_type, payload=payload
    )


def test_the_default_task_type_is_the_requests_default() -> None:
    assert DEFAULT_TASK_TYPE == "default"


def test_one_message_names_every_bad_field() -> None:
    with pytest.raises(InvalidRequest) as caught:
        check({"data": [1, 2, None, "x"], "z_limit": -1})
    assert str(caught.value) == (
        "payload invalid for task_type 'default' of engine 'analysis': "
        "data.2: Input should be a valid number; "
        "data.3: Input should be a valid number, unable to parse string as a number; "
        "z_limit: Input should be greater than 0"
    )


def test_a_missing_field_and_a_payload_that_is_no_object() -> None:
    with pytest.raises(
        InvalidRequest, match=r"^payload invalid for task_type 'report' of engine 'analysis': "
    ):
        check({}, task_type="report")
    with pytest.raises(InvalidRequest) as caught:
        check({}, task_type="report")
    assert str(caught.value).endswith(": title: Field required")
    with pytest.raises(InvalidRequest) as caught:
        check([1, 2], task_type="report")
    assert str(caught.value).endswith(": (root): Input should be a valid dictionary or instance of Report")


def test_a_valid_payload_comes_back_with_its_defaults() -> None:
    assert check({"data": [1, "2.5"]}) == {"data": [1.0, 2.5], "z_limit": 3.0}


def test_a_task_type_without_its_own_schema_falls_back_to_default() -> None:
    # Given "series" has no schema of its own, the engine's "default" one applies.
    assert schema_key(SCHEMAS, "analysis", "series") == "default"
    with pytest.raises(
        InvalidRequest, match=r"for task_type 'series' of engine 'analysis': data: Field required"
    ):
        check({}, task_type="series")


def test_a_capability_schema_wins_and_says_so() -> None:
    assert schema_key(SCHEMAS, "ask", "default") == "ask:default"
    assert schema_key(SCHEMAS, "ask", "other") == "ask:default"
    assert schema_key(SCHEMAS, "ask", "report") == "report"  # the task_type's own schema first
    # A task_type spelling another capability's key does not reach that capability's schema.
    assert schema_key(SCHEMAS, "analysis", "ask:default") == "default"
    with pytest.raises(InvalidRequest) as caught:
        check({"payload": {"a": "x"}}, capability="ask")
    assert str(caught.value) == (
        "payload invalid for capability 'ask', task_type 'default' of engine 'analysis': "
        "payload.a: Input should be a valid integer, unable to parse string as an integer"
    )


def test_no_applicable_schema_accepts_anything() -> None:
    # An engine without schemas (the seed's custom engines) or without "default".
    assert (
        check_payload({}, engine="my", capability="c", task_type="default", payload={"x": object()}) is None
    )
    only_report = {"report": Report}
    assert schema_key(only_report, "analysis", "default") is None
    assert check_payload(only_report, engine="e", capability="c", task_type="t", payload=[1]) is None


def test_json_schemas_keep_the_keys() -> None:
    schemas = json_schemas(SCHEMAS)
    assert sorted(schemas) == ["ask:default", "default", "report"]
    assert schemas["default"]["required"] == ["data"]
    assert schemas["default"]["properties"]["z_limit"] == {
        "default": 3.0, "exclusiveMinimum": 0, "title": "Z Limit", "type": "number"
    }  # fmt: skip


numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**15), 10**15)
not_numbers = st.none() | st.text().filter(lambda s: not _parses(s)) | st.lists(st.integers(), max_size=2)


def _parses(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@given(st.lists(numbers, min_size=1, max_size=30))
def test_any_list_of_numbers_passes(values: list[float]) -> None:
    assert check({"data": values}) == {"data": [float(v) for v in values], "z_limit": 3.0}


@given(st.lists(numbers, min_size=1, max_size=30), st.data())
def test_a_non_number_at_index_i_is_named_data_i(values: list[float], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(values) - 1))
    bad: list[object] = list(values)
    bad[index] = data.draw(not_numbers)
    with pytest.raises(InvalidRequest) as caught:
        check({"data": bad})
    problems = str(caught.value).split(": ", 1)[1].split("; ")
    assert [p.split(": ")[0] for p in problems] == [f"data.{index}"]
