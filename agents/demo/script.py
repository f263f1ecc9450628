"""The demo's script and its expectations. Pure: the phases, and what the figures must show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BLUE = "demo_blue"
GREEN = "demo_green"
# Green slows down sixfold and fails half its requests while it is degraded.
DEGRADED = {"delay_ms": 250.0, "fail_ratio": 0.5}


@dataclass(frozen=True, slots=True)
class Phase:
    """A stretch of the scenario: how long, what is injected, what to watch for."""

    name: str
    seconds: float
    faults: dict[str, dict[str, float]]
    watch: str


def phases(steady: float, degrade: float, recover: float) -> list[Phase]:
    """Steady load on both engines, then green degraded, then green healthy again."""
    return [
        Phase("steady", steady, {}, "both engines share the load"),
        Phase(
            "degrade", degrade, {GREEN: DEGRADED},
            f"{GREEN} slows down and fails: routing moves its traffic to {BLUE}, an alert fires, "
            f"the analysis explains it, {BLUE}'s queue backs up and the optimizer grows its pool",
        ),
        Phase("recover", recover, {}, f"{GREEN} is healthy again: it wins traffic back, the alert resolves"),
    ]  # fmt: skip


@dataclass(slots=True)
class Outcome:
    """What one run of the scenario saw: per phase and engine, the tail's figures; and the platform's
    alerts, actions and insights since it started."""

    figures: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    insights: list[dict[str, Any]] = field(default_factory=list)


def share(figures: dict[str, dict[str, float]], engine: str) -> float:
    """The engine's share of the requests that ran (0 when none ran)."""
    total = sum(f["ran"] for f in figures.values())
    return figures.get(engine, {}).get("ran", 0) / total if total else 0.0


def checks(outcome: Outcome) -> list[tuple[str, bool]]:
    """What the scenario must show, each with whether it did."""
    steady = share(outcome.figures.get("steady", {}), GREEN)
    degraded = share(outcome.figures.get("degrade", {}), GREEN)
    recovered = share(outcome.figures.get("recover", {}), GREEN)
    verdicts = [a for a in outcome.actions if a.get("verdict")]
    return [
        (f"routing moved traffic off {GREEN} ({steady:.0%} -> {degraded:.0%})", degraded < steady / 2),
        (f"{GREEN} won traffic back ({recovered:.0%})", recovered > degraded and recovered >= 0.2),
        (
            f"an alert fired for {GREEN}",
            any(a["engine"] == GREEN and a["name"].startswith("Demo") for a in outcome.alerts),
        ),
        (
            f"the alert on {GREEN} resolved",
            any(a["engine"] == GREEN and a.get("resolved_at") for a in outcome.alerts),
        ),
        (f"an insight names {GREEN}", any(i.get("subject") == GREEN for i in outcome.insights)),
        ("the optimizer acted and judged its action", bool(verdicts)),
    ]
