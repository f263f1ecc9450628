"""Which request a NATS subject becomes: configured subjects, engines' subjects, the default pattern.

Pure: built from the settings and the engine catalog, tested without servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# task_type is limited to 64 characters (TaskRequest); longer engine subjects are cut.
MAX_TASK_TYPE = 64
# NATS subject wildcards: exactly one token, and one or more trailing tokens.
ONE_WILDCARD, TAIL_WILDCARD = "*", ">"


class Subscriber(Protocol):
    """What the map needs of an engine (a BaseAgent after `start()` collected its subjects)."""

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> list[str]: ...

    @property
    def subscriptions(self) -> Sequence[tuple[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Route:
    """What a subject maps to; `engine` pins the request to one engine (its own subjects)."""

    capability: str
    task_type: str
    engine: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """A subject pattern (NATS wildcards `*` and `>`) and the route it gives."""

    pattern: str
    route: Route


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a trailing `>` is one or more tokens."""
    want, have = pattern.split("."), subject.split(".")
    for index, token in enumerate(want):
        if token == TAIL_WILDCARD:
            return len(have) > index
        if index >= len(have) or (token != ONE_WILDCARD and token != have[index]):
            return False
    return len(want) == len(have)


def covers(wide: str, narrow: str) -> bool:
    """Every subject matched by `narrow` is matched by `wide` (so a stream needs only `wide`)."""
    want, have = wide.split("."), narrow.split(".")
    for index, token in enumerate(want):
        if token == TAIL_WILDCARD:
            return len(have) > index
        if index >= len(have) or have[index] == TAIL_WILDCARD:
            return False
        if token != ONE_WILDCARD and (have[index] == ONE_WILDCARD or token != have[index]):
            return False
    return len(want) == len(have)


def minimal_subjects(subjects: Iterable[str]) -> list[str]:
    """Drop subjects another one already covers; JetStream rejects overlapping stream subjects."""
    unique = sorted(set(subjects))
    return [s for s in unique if not any(o != s and covers(o, s) for o in unique)]


def parse_target(value: str) -> tuple[str, str]:
    """`capability[:task_type]` from BRIDGE_SUBJECT_MAP."""
    capability, _, task_type = value.partition(":")
    return capability.strip(), task_type.strip() or "default"


class SubjectMap:
    """Finds the route of a subject: configured rules, then engine subjects, then the default."""

    def __init__(self, prefix: str, rules: list[Rule]) -> None:
        self.prefix = prefix
        # Exact subjects win over wildcards; otherwise declaration order decides.
        self.rules = sorted(rules, key=lambda r: ONE_WILDCARD in r.pattern or TAIL_WILDCARD in r.pattern)

    @classmethod
    def build(cls, prefix: str, configured: Mapping[str, str], engines: Iterable[Subscriber]) -> SubjectMap:
        """Rules from BRIDGE_SUBJECT_MAP and from each engine's recorded `_subscribe` subjects.

        An engine's subject becomes a request for that engine's first capability, pinned to
        that engine (routing still checks its workers, breaker and queue), with the subject as
        task_type, so a migrated engine keeps receiving what it subscribed to.
        """
        rules = [Rule(p, Route(*parse_target(target))) for p, target in configured.items()]
        for engine in engines:
            for subject, _handler in engine.subscriptions:
                route = Route(engine.capabilities[0], subject[:MAX_TASK_TYPE], engine.name)
                rules.append(Rule(subject, route))
        return cls(prefix, rules)

    def match(self, subject: str) -> Route | None:
        """The route of `subject`, or None when nothing maps it."""
        for rule in self.rules:
            if matches(rule.pattern, subject):
                return rule.route
        tokens = subject.split(".")
        if tokens[0] == self.prefix and len(tokens) in (2, 3) and all(tokens[1:]):
            return Route(tokens[1], tokens[2] if len(tokens) == 3 else "default")
        return None

    def stream_subjects(self) -> list[str]:
        """Subjects the stream must capture: the default pattern and every rule's pattern."""
        return minimal_subjects([f"{self.prefix}.>", *(r.pattern for r in self.rules)])
