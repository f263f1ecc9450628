"""Monitoring thresholds as configuration: a YAML file validated by pydantic.

A threshold says: when `metric` of a subject (an engine, or the platform) compares to `value` for
`for` long, raise an alert of `severity` on `channels`. A bad file is refused as a whole, with
every problem named by line and field, before the performance engine starts. Pure: parsing only.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# What a performance snapshot measures (per engine unless marked platform-wide).
METRICS = (
    "queue_depth",  # messages waiting in the engine's queue
    "live_workers",  # workers with a fresh heartbeat
    "failure_ratio",  # failed / (success + failed) over the snapshot window
    "runtime_p95_seconds",  # 95th percentile of request runtime over the window
    "end_to_end_p95_seconds",  # 95th percentile from creation to outcome over the window
    "breaker_state",  # 0 closed, 1 half-open, 2 open
    "cpu_percent",  # the engine's live workers together, percent of one core
    "memory_bytes",  # the engine's live workers together, resident bytes
    "worker_cpu_percent",  # the engine's busiest live worker (its main process and pool children)
    "worker_memory_bytes",  # the engine's largest live worker, resident bytes
    "history_backlog",  # platform: lifecycle records not yet in PostgreSQL
    "db_connection_ratio",  # platform: connections / max_connections
    "redis_memory_bytes",  # platform: Redis used_memory
    "redis_memory_ratio",  # platform: used_memory / maxmemory (not measured without a maxmemory)
    "bridge_lag",  # platform: events in the stream not yet delivered to the bridge (fresh report)
    "bridge_report_age_seconds",  # platform: age of the newest bridge lag report
    "insights_recent",  # warning or worse insights about the engine in the last INSIGHT_COOLDOWN_SECONDS
)
PLATFORM = "platform"  # the subject of platform-wide metrics
COMPARISONS = {
    ">": float.__gt__,
    ">=": float.__ge__,
    "<": float.__lt__,
    "<=": float.__le__,
    "==": float.__eq__,
}
Comparison = Literal[">", ">=", "<", "<=", "=="]
Severity = Literal["info", "warning", "critical"]
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]i?B)$")
_UNIT_BYTES = {f"{p}B": 1000.0**i for i, p in enumerate("KMGT", 1)} | {
    f"{p}iB": 1024.0**i for i, p in enumerate("KMGT", 1)
}
M = TypeVar("M", bound=BaseModel)


class ThresholdConfigError(ValueError):
    """A thresholds file that cannot be used; the message names each bad line and field."""


def selected(selector: str, subject: str) -> bool:
    """Whether a selector (an engine name, or a shell-style pattern such as `demo_*`) takes `subject`."""
    return fnmatch.fnmatchcase(subject, selector)


def seconds(value: Any) -> float:
    """A duration as Prometheus writes it (`90s`, `5m`, `1h`) or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration; write it like 30s, 5m or 1h")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def number(value: Any) -> Any:
    """A threshold's value: a number, or a size such as `512MiB` or `2GB` in bytes; anything
    else is left for pydantic to refuse."""
    if isinstance(value, str):
        match = _SIZE.match(value.strip())
        if match:
            return float(match.group(1)) * _UNIT_BYTES[match.group(2)]
    return value


class Threshold(BaseModel):
    """One rule: metric, selector, comparison, value, `for`, severity, channels."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=100)
    metric: Literal[METRICS]  # type: ignore[valid-type]
    selector: str = Field(
        "*", min_length=1, description="an engine name or a shell-style pattern (`*`, `demo_*`)"
    )
    comparison: Comparison
    value: float
    for_seconds: float = Field(0.0, ge=0, alias="for")
    severity: Severity = "warning"
    channels: list[str] = Field(default_factory=lambda: ["log"])
    cooldown_seconds: float = Field(300.0, ge=0, alias="cooldown")
    summary: str = ""

    @field_validator("for_seconds", "cooldown_seconds", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return seconds(value)

    @field_validator("value", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return number(value)

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, channels: list[str]) -> list[str]:
        for channel in channels:
            kind, _, target = channel.partition(":")
            if kind not in ("log", "nats", "webhook") or (kind == "webhook") != bool(target):
                raise ValueError(f"unknown channel {channel!r}; use log, nats or webhook:<name>")
        return channels

    def holds(self, measured: float) -> bool:
        """Whether a measured value meets the condition."""
        return bool(COMPARISONS[self.comparison](float(measured), self.value))

    def selects(self, subject: str) -> bool:
        """Whether this threshold watches `subject` (an engine, or `platform`)."""
        return selected(self.selector, subject)


WEBHOOK_SCHEMES = ("http", "https")


class Thresholds(BaseModel):
    """A thresholds file: the rules and the webhooks their channels name."""

    model_config = ConfigDict(extra="forbid")

    thresholds: list[Threshold]
    webhooks: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_and_webhooks(self) -> Thresholds:
        names = [t.name for t in self.thresholds]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"threshold names must be unique; repeated: {', '.join(duplicates)}")
        for threshold in self.thresholds:
            for channel in threshold.channels:
                kind, _, target = channel.partition(":")
                if kind == "webhook" and target not in self.webhooks:
                    raise ValueError(f"{threshold.name}: channel {channel!r} names no entry of `webhooks`")
        # The monitor POSTs with urllib, which would also open file:// and other schemes.
        schemes = {name: urlsplit(url).scheme for name, url in self.webhooks.items()}
        bad = sorted(name for name, scheme in schemes.items() if scheme not in WEBHOOK_SCHEMES)
        if bad:
            raise ValueError(f"webhooks must be http:// or https:// URLs; not: {', '.join(bad)}")
        return self


def parse(text: str, source: str = "<thresholds>") -> Thresholds:
    """Validate a thresholds YAML document; ThresholdConfigError names each problem's line."""
    return validate_yaml(Thresholds, text, source)


def validate_yaml(model: type[M], text: str, source: str) -> M:
    """A YAML document validated as `model`; ThresholdConfigError names each problem's line and field."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ThresholdConfigError(f"{source}: not valid YAML: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "file"
            line = _line_of(root, error["loc"])
            problems.append(f"{source}:{line}: {where}: {error['msg']}")
        raise ThresholdConfigError("\n".join(problems)) from None


def _line_of(node: yaml.Node | None, path: tuple[int | str, ...]) -> int:
    """1-based line of the deepest node along `path` that exists (the file's first line if none)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            if child is None:  # a missing or unknown key: point at the mapping, or at the key itself
                child = next((k for k, _ in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line
