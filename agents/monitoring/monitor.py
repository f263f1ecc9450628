"""The performance engine's monitor: a reading, the thresholds, alerts stored and sent.

Each run takes a reading, measures it against the previous one (kept in Redis with the alert
state, so any worker may run the next), evaluates the thresholds, stores fired and resolved alerts
in PostgreSQL (one open row per threshold and subject) and sends them to their channels: the log,
NATS `agents.alerts.<severity>`, and webhooks (JSON POST, short timeout, two attempts; a failing
webhook is logged and never stops the run).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from typing import Any

import redis
import structlog
from tenacity import retry, stop_after_attempt, wait_fixed

from agents import aio
from agents.monitoring.alerting import AlertState, Transition, evaluate
from agents.monitoring.readings import take_reading
from agents.monitoring.snapshot import Reading, measurements
from agents.monitoring.thresholds import Thresholds
from agents.names import MONITOR_STATE_KEY
from agents.recorder import count
from agents.telemetry.catalog import ALERTS
from agents.telemetry.tally import Tally

log = structlog.get_logger("agents.monitoring")
ALERTS_SUBJECT = "agents.alerts"  # + ".<severity>"
WEBHOOK_TIMEOUT_SECONDS = 2.0


class Monitor:
    """Runs the thresholds over the platform's readings; `run_once` is one evaluation."""

    def __init__(
        self,
        client: redis.Redis,
        thresholds: Thresholds,
        database: bool = True,
        state_key: str = MONITOR_STATE_KEY,
    ) -> None:
        self.client = client
        self.thresholds = thresholds
        self.database = database
        self.state_key = state_key  # a monitor with other thresholds keeps its own state
        self.measured: dict[str, dict[str, float]] = {}  # the last run's snapshot (for the optimizer)
        self.interval = 0.0  # seconds between the last run's two readings

    def run_once(self) -> list[Transition]:
        """Read, evaluate, store and send; returns the alerts that fired or resolved."""
        reading = take_reading(self.client, self.database)
        previous, state = self._load()
        self.measured = measurements(previous, reading)
        self.interval = reading.at - previous.at if previous else 0.0
        transitions = evaluate(self.thresholds.thresholds, self.measured, reading.at, state)
        self.client.set(
            self.state_key, json.dumps({"reading": _dump_reading(reading), "state": _dump_state(state)})
        )
        tally = Tally()
        for transition in transitions:
            self._store(transition)
            t = transition.threshold
            tally.inc(ALERTS, (t.name, transition.subject, t.severity, transition.kind))
        count(self.client, tally)
        self._send(transitions)
        return transitions

    def _load(self) -> tuple[Reading | None, AlertState]:
        raw = self.client.get(self.state_key)
        if not raw:
            return None, AlertState()
        saved = json.loads(raw)
        return _load_reading(saved["reading"]), _load_state(saved["state"])

    def _store(self, transition: Transition) -> None:
        if not self.database:
            return
        from db.alerts import open_alert, resolve_alert

        threshold = transition.threshold
        if transition.kind == "fired":
            labels = {
                "metric": threshold.metric, "value": transition.value, "comparison": threshold.comparison,
                "threshold": threshold.value, "for_seconds": threshold.for_seconds,
            }  # fmt: skip
            open_alert(threshold.name, transition.subject, threshold.severity, describe(transition), labels)
        else:
            resolve_alert(threshold.name, transition.subject)

    def _send(self, transitions: Sequence[Transition]) -> None:
        to_nats: list[tuple[str, Any]] = []
        for transition in transitions:
            payload = as_payload(transition)
            for channel in transition.threshold.channels:
                kind, _, target = channel.partition(":")
                if kind == "log":
                    log.warning("alert_" + transition.kind, **payload)
                elif kind == "nats":
                    to_nats.append((f"{ALERTS_SUBJECT}.{transition.threshold.severity}", payload))
                elif kind == "webhook":
                    _post_quietly(self.thresholds.webhooks[target], payload)
        if to_nats:
            from agents.nats_client import publish_many

            try:
                aio.run(publish_many(to_nats))
            except Exception as exc:  # NATS away: the alert is stored and logged anyway
                log.warning("alert_nats_failed", count=len(to_nats), error=repr(exc))


def describe(transition: Transition) -> str:
    """One line: what crossed which line, for whom."""
    t = transition.threshold
    return (
        f"{t.name} {transition.kind} for {transition.subject}: {t.metric} = {transition.value:g} "
        f"({t.comparison} {t.value:g} for {t.for_seconds:g}s){' - ' + t.summary if t.summary else ''}"
    )


def as_payload(transition: Transition) -> dict[str, Any]:
    """What the NATS and webhook channels carry (JSON)."""
    t = transition.threshold
    return {
        "alert": t.name, "state": transition.kind, "subject": transition.subject, "severity": t.severity,
        "metric": t.metric, "value": transition.value, "threshold": t.value, "comparison": t.comparison,
        "at": transition.at, "summary": describe(transition),
    }  # fmt: skip


@retry(stop=stop_after_attempt(2), wait=wait_fixed(0.5), reraise=True)
def _post(url: str, payload: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    # The thresholds file's webhooks are http(s) only (checked when it is loaded, thresholds.py).
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS):  # nosec B310 # http(s) only
        pass


def _post_quietly(url: str, payload: dict[str, Any]) -> None:
    try:
        _post(url, payload)
    except Exception as exc:  # a failing webhook never stops the monitor
        log.warning("alert_webhook_failed", alert=payload["alert"], error=repr(exc))


def _dump_reading(reading: Reading) -> dict[str, Any]:
    return {
        "at": reading.at,
        "completions": {e: [c.completed, c.failed] for e, c in reading.completions.items()},
        "runtime": {k: [[str(le), n] for le, n in v] for k, v in reading.runtime.items()},
        "end_to_end": {k: [[str(le), n] for le, n in v] for k, v in reading.end_to_end.items()},
    }


def _load_reading(data: dict[str, Any]) -> Reading:
    from agents.telemetry.rates import Completions

    return Reading(
        at=float(data["at"]),
        engines=[],
        completions={e: Completions(float(c), float(f)) for e, (c, f) in data["completions"].items()},
        runtime={k: [(le, float(n)) for le, n in v] for k, v in data["runtime"].items()},
        end_to_end={k: [(le, float(n)) for le, n in v] for k, v in data["end_to_end"].items()},
    )


def _dump_state(state: AlertState) -> dict[str, Any]:
    def keyed(values: dict[tuple[str, str], float]) -> dict[str, float]:
        return {f"{name}|{subject}": at for (name, subject), at in values.items()}

    return {
        "pending": keyed(state.pending_since),
        "open": keyed(state.open_since),
        "last": keyed(state.last_fired),
    }


def _load_state(data: dict[str, Any]) -> AlertState:
    def unkeyed(values: dict[str, float]) -> dict[tuple[str, str], float]:
        return {tuple(key.split("|", 1)): float(at) for key, at in values.items()}  # type: ignore[misc]

    return AlertState(unkeyed(data["pending"]), unkeyed(data["open"]), unkeyed(data["last"]))
