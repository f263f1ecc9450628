"""Alert state: from successive snapshots to alerts that fire once, wait out a cooldown and resolve.

Pure, like Prometheus's rule evaluation: a condition that holds is *pending* until it has held for
the threshold's `for`, then the alert *fires* (once per threshold and subject: one open alert,
however many evaluations see it); when the condition stops holding the alert *resolves*. A
threshold that fired for a subject does not fire again for it within its cooldown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from agents.monitoring.thresholds import Threshold

# Measured values of one snapshot: subject (engine or "platform") -> metric -> value.
Measurements = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert that fired or resolved at `at` (seconds, the snapshot's time)."""

    kind: Literal["fired", "resolved"]
    threshold: Threshold
    subject: str
    value: float | None
    at: float

    @property
    def key(self) -> tuple[str, str]:
        """One open alert per threshold and subject."""
        return (self.threshold.name, self.subject)


@dataclass(slots=True)
class AlertState:
    """What the evaluator remembers between snapshots (small: one entry per pending or open alert)."""

    pending_since: dict[tuple[str, str], float] = field(default_factory=dict)
    open_since: dict[tuple[str, str], float] = field(default_factory=dict)
    last_fired: dict[tuple[str, str], float] = field(default_factory=dict)


def evaluate(
    thresholds: Iterable[Threshold], measurements: Measurements, now: float, state: AlertState
) -> list[Transition]:
    """Apply one snapshot taken at `now`; returns the alerts that fired or resolved, and updates
    `state`. A subject missing from the snapshot (its metric unknown) keeps its alert as it was."""
    transitions: list[Transition] = []
    for threshold in thresholds:
        for subject, metrics in sorted(measurements.items()):
            if not threshold.selects(subject) or threshold.metric not in metrics:
                continue
            value = float(metrics[threshold.metric])
            key = (threshold.name, subject)
            if threshold.holds(value):
                since = state.pending_since.setdefault(key, now)
                cooled = now - state.last_fired.get(key, float("-inf")) >= threshold.cooldown_seconds
                if key not in state.open_since and now - since >= threshold.for_seconds and cooled:
                    state.open_since[key] = now
                    state.last_fired[key] = now
                    transitions.append(Transition("fired", threshold, subject, value, now))
            else:
                state.pending_since.pop(key, None)
                if state.open_since.pop(key, None) is not None:
                    transitions.append(Transition("resolved", threshold, subject, value, now))
    return transitions
