"""Task lifecycle events and the rules that fold them into one history row per task id.

Pure: the recorder, the PostgreSQL upsert and the tests all follow these rules. Events reach
PostgreSQL out of order (several processes, batches), so a row keeps the status of the newest
event, except that a final status (an outcome) is never replaced by a stage, and always
replaces one. That makes the result independent of the order events arrive in.

Every record is built as a `LifecycleEvent` (the pipeline's history hook, the bridge's dead
letters); on the wire and in the fold it is a plain dict of its non-null fields.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agents.models import Priority
from agents.statuses import FINAL_STATUSES

# Longest error text kept in the history (a traceback-sized message is cut, not refused).
MAX_ERROR_CHARS = 2000

# Columns an event may fill; a later non-null value wins.
DATA_FIELDS = (
    "task_name", "task_type", "capability", "engine", "priority", "payload", "payload_digest",
    "result", "error", "worker", "confidence", "reason", "started_at", "finished_at", "runtime",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One step of a task's life as the history records it: a status and what was learnt then."""

    task_id: str
    status: str
    at: float = dataclasses.field(default_factory=time.time)
    task_name: str | None = None
    task_type: str | None = None
    capability: str | None = None
    engine: str | None = None
    priority: int | None = None
    payload: Any = None
    result: Any = None
    error: str | None = None
    worker: str | None = None
    confidence: float | None = None
    reason: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    runtime: float | None = None
    retries: int | None = None

    def __post_init__(self) -> None:
        if self.error is not None and len(self.error) > MAX_ERROR_CHARS:
            object.__setattr__(self, "error", self.error[:MAX_ERROR_CHARS])

    def as_record(self) -> dict[str, Any]:
        """The record appended to the history list: the non-null fields."""
        return {name: value for name in _EVENT_FIELDS if (value := getattr(self, name)) is not None}


_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(LifecycleEvent))


def request_fields(raw: Any) -> dict[str, Any]:
    """History columns of a raw request (a task's first argument), if it is a request object.

    Read before validation, so an invalid priority is recorded as missing, not as an error here:
    the router rejects the request and says why.
    """
    if not isinstance(raw, dict):
        return {}
    found: dict[str, Any] = {
        "capability": raw.get("capability"),
        "task_type": raw.get("task_type", "default"),
        "payload": raw.get("payload"),
    }
    priority = raw.get("priority")
    try:
        found["priority"] = (
            int(Priority[priority.upper()]) if isinstance(priority, str) else int(priority or Priority.NORMAL)
        )
    except (KeyError, ValueError, TypeError):
        found["priority"] = None
    return found


def digest(payload: Any) -> str:
    """SHA-256 of the payload's canonical JSON: equal payloads, equal digests."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def status_wins(current: str, current_at: float, incoming: str, incoming_at: float) -> bool:
    """Whether an incoming event's status replaces the row's current status."""
    current_final, incoming_final = current in FINAL_STATUSES, incoming in FINAL_STATUSES
    if current_final != incoming_final:
        # An outcome beats any stage, whatever the clocks say (hosts' clocks drift).
        return incoming_final
    return incoming_at >= current_at


def fold(row: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    """Apply one event to a row (None: the task's first event); returns the new row."""
    if row is None:
        row = {"task_id": event["task_id"], "status": event["status"], "status_at": event["at"],
               "created_at": event["at"], "retries": 0}  # fmt: skip
    else:
        row = dict(row)
        if status_wins(row["status"], row["status_at"], event["status"], event["at"]):
            row["status"], row["status_at"] = event["status"], event["at"]
        row["created_at"] = min(row["created_at"], event["at"])
    for field in DATA_FIELDS:
        value = event.get(field)
        if value is not None:
            row[field] = value
    row["retries"] = max(row.get("retries", 0), event.get("retries") or 0)
    return row


def merge(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fold a batch of events into one row per task id (a batch upsert may touch a row once)."""
    rows: dict[str, dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: e["at"]):
        rows[event["task_id"]] = fold(rows.get(event["task_id"]), event)
    return rows
