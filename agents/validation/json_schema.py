"""Checks a payload against a JSON Schema (Draft 2020-12): every problem, with its field's path.

This is how a process without an engine's code validates that engine's payloads: the engine's
card carries its payload models as JSON Schemas (agents/registry.py).
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing.exceptions import Unresolvable

from agents.errors import InvalidRequest
from agents.validation.payloads import field_name

Problem = dict[str, str]


def checked_validator(schema: Any, name: str = "schema") -> Draft202012Validator:
    """A validator for `schema`, or InvalidRequest saying why it is not a JSON Schema."""
    if not isinstance(schema, dict):
        raise InvalidRequest(f"{name}: a JSON Schema must be an object, got {type(schema).__name__}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = field_name(list(exc.absolute_path), root="the schema itself")
        raise InvalidRequest(
            f"{name} is not a valid JSON Schema (Draft 2020-12): at {where}: {exc.message}"
        ) from None
    return Draft202012Validator(schema)


def _path(error: ValidationError) -> list[Any]:
    path = list(error.absolute_path)
    if error.validator == "required":
        # jsonschema reports a missing property at its parent: name the property itself.
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [p for p in required if error.message == f"{p!r} is a required property"]
        path += missing[:1]
    return path


def _order(path: list[Any], problem: Problem) -> tuple[list[tuple[int, int | str]], str]:
    # Natural order: data.2 before data.10, a field before its own fields.
    return [(0, p) if isinstance(p, int) else (1, str(p)) for p in path], problem["problem"]


def json_schema_problems(schema: Any, payload: Any, name: str = "schema") -> list[Problem]:
    """Every way `payload` breaks `schema`, as {"field": "a.b.2", "problem": ...}, sorted by field;
    InvalidRequest when `schema` is no valid JSON Schema (or a $ref in it cannot be resolved)."""
    validator = checked_validator(schema, name)
    try:
        errors = list(validator.iter_errors(payload))
    except Unresolvable as exc:  # remote references are never fetched: no I/O here
        raise InvalidRequest(f"{name}: cannot resolve $ref: {exc}") from None
    found = []
    for error in errors:
        path = _path(error)
        found.append((path, {"field": field_name(path), "problem": error.message}))
    return [problem for _, problem in sorted(found, key=lambda item: _order(*item))]
