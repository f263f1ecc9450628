"""Per-task_type payload models of an engine, and one error naming every bad field.

An engine declares `payload_schemas` (agents.base.BaseAgent): task_type -> pydantic model. A key
may be qualified with a capability, "<capability>:<task_type>", for a capability whose payload
differs (the analysis engine's `validation`); a task_type with a ":" only ever matches such a
qualified key. "default" applies to requests without a task_type
and to task types that have no schema of their own; an engine that declares nothing accepts any
payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from agents.errors import InvalidRequest
from agents.models import TaskRequest

PayloadSchemas = Mapping[str, type[BaseModel]]

# TaskRequest.task_type's default: the one name a request without a task_type carries.
DEFAULT_TASK_TYPE: str = TaskRequest.model_fields["task_type"].default
# How a problem of the payload as a whole (not one of its fields) is named.
ROOT_FIELD = "(root)"


def for_capability(capability: str, task_type: str = DEFAULT_TASK_TYPE) -> str:
    """The `payload_schemas` key of a schema that applies to one capability only."""
    return f"{capability}:{task_type}"


def schema_key(schemas: Mapping[str, Any], capability: str | None, task_type: str) -> str | None:
    """The key whose schema applies to a request, most specific first; None when none does."""
    if capability is None:
        keys: tuple[str, ...] = (task_type, DEFAULT_TASK_TYPE)
    elif ":" in task_type:
        # A qualified key names one capability's schema: a task_type spelling it is no way around it.
        keys = (for_capability(capability, task_type), for_capability(capability), DEFAULT_TASK_TYPE)
    else:
        keys = (
            for_capability(capability, task_type),
            task_type,
            for_capability(capability),
            DEFAULT_TASK_TYPE,
        )
    return next((key for key in keys if key in schemas), None)


def field_name(location: tuple[int | str, ...] | list[int | str], root: str = ROOT_FIELD) -> str:
    """A field's dotted path, e.g. `data.2`; `root` for the value as a whole."""
    return ".".join(str(part) for part in location) or root


def describe_problems(exc: ValidationError, root: str = ROOT_FIELD) -> str:
    """Every bad field of a pydantic error with its problem: `data.2: Input should be ...; z_limit: ...`."""
    return "; ".join(f"{field_name(error['loc'], root)}: {error['msg']}" for error in exc.errors())


def validate_payload(model: type[BaseModel], payload: Any, *, where: str) -> dict[str, Any]:
    """The payload as `model` validates it (defaults filled, JSON names), or InvalidRequest naming
    every bad field; `where` says whose schema it is, e.g. "task_type 'default' of engine 'x'"."""
    try:
        # by_alias: the handler sees the field names of the wire, as the caller sent them.
        return model.model_validate(payload).model_dump(by_alias=True)
    except ValidationError as exc:
        raise InvalidRequest(f"payload invalid for {where}: {describe_problems(exc)}") from None


def check_payload(
    schemas: PayloadSchemas, *, engine: str, capability: str, task_type: str, payload: Any
) -> dict[str, Any] | None:
    """The payload validated by the engine's schema for this capability and task_type; None when
    the engine declares none that applies (the payload is then taken as it is)."""
    key = schema_key(schemas, capability, task_type)
    if key is None:
        return None
    where = f"task_type {task_type!r} of engine {engine!r}"
    if key.startswith(f"{capability}:"):  # a capability's own schema: the task_type alone would mislead
        where = f"capability {capability!r}, {where}"
    return validate_payload(schemas[key], payload, where=where)


def json_schemas(schemas: PayloadSchemas) -> dict[str, dict[str, Any]]:
    """The declared models as JSON Schemas (for engine cards), by the same keys."""
    return {key: model.model_json_schema() for key, model in schemas.items()}
