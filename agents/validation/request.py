"""The analysis engine's `validation` capability, pure: which schema, and the verdict.

A request names a task_type (and optionally the engine) whose declared schema is looked up in
the engine cards, or carries an inline JSON Schema. The caller reads the cards (I/O) and hands
them in as `declared`: engine -> task_type -> JSON Schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.errors import InvalidRequest
from agents.models import NAME_PATTERN
from agents.validation.json_schema import json_schema_problems
from agents.validation.payloads import DEFAULT_TASK_TYPE, schema_key

Declared = Mapping[str, Mapping[str, dict[str, Any]]]


class ValidationRequest(BaseModel):
    """The `validation` capability's payload: a payload, and the schema to check it against."""

    model_config = ConfigDict(extra="forbid")

    payload: Any = Field(description="The payload to check.")
    task_type: str | None = Field(
        None, min_length=1, max_length=64, description="Whose declared schema; default: 'default'."
    )
    engine: str | None = Field(
        None, pattern=NAME_PATTERN, description="The engine declaring it; default: the only one that does."
    )
    json_schema: dict[str, Any] | None = Field(
        None, alias="schema", description="An inline JSON Schema (Draft 2020-12) instead of a declared one."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ValidationRequest:
        if self.json_schema is not None and (self.task_type is not None or self.engine is not None):
            raise ValueError("give either schema, or task_type and engine, not both")
        return self


def _listing(declared: Declared) -> str:
    # Only engines that declare something: the others accept any payload.
    return "; ".join(f"{e}: {', '.join(sorted(s))}" for e, s in sorted(declared.items()) if s) or "none"


def choose_schema(declared: Declared, task_type: str, engine: str | None) -> tuple[str, dict[str, Any]]:
    """The engine and the JSON Schema that apply to `task_type`, or InvalidRequest naming the choices."""
    if engine is not None:
        schemas = declared.get(engine)
        if schemas is None:
            raise InvalidRequest(
                f"engine: no engine {engine!r} has announced itself; known: {', '.join(sorted(declared))}"
            )
        # As the engine itself would: its schema for that task_type, else its "default" one.
        key = schema_key(schemas, None, task_type)
        if key is None:
            declares = ", ".join(sorted(schemas)) or "none"
            raise InvalidRequest(
                f"engine {engine!r} declares no payload schema for task_type {task_type!r} "
                f"(it declares: {declares})"
            )
        return engine, schemas[key]
    owners = sorted(name for name, schemas in declared.items() if task_type in schemas)
    if not owners:
        raise InvalidRequest(
            f"task_type: no engine declares a payload schema for {task_type!r}; "
            f"declared: {_listing(declared)}"
        )
    if len(owners) > 1:
        raise InvalidRequest(
            f"task_type {task_type!r} is declared by several engines ({', '.join(owners)}): "
            "name one in `engine`"
        )
    return owners[0], declared[owners[0]][task_type]


def validation_report(request: ValidationRequest, declared: Declared) -> dict[str, Any]:
    """{"valid", "task_type", "engine", "errors"} for one validation request."""
    if request.json_schema is not None:
        errors = json_schema_problems(request.json_schema, request.payload, name="schema")
        return {"valid": not errors, "task_type": None, "engine": None, "errors": errors}
    task_type = request.task_type or DEFAULT_TASK_TYPE
    engine, schema = choose_schema(declared, task_type, request.engine)
    name = f"the schema of task_type {task_type!r} of engine {engine!r}"
    errors = json_schema_problems(schema, request.payload, name=name)
    return {"valid": not errors, "task_type": task_type, "engine": engine, "errors": errors}


def answer(payload: dict[str, Any], read_declared: Callable[[], Declared]) -> dict[str, Any]:
    """The `validation` capability's result for its (validated) payload; `read_declared` reads the
    engine cards' schemas, called only when the request carries no inline schema."""
    request = ValidationRequest.model_validate(payload)
    return validation_report(request, {} if request.json_schema is not None else read_declared())
