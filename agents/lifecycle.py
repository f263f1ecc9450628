"""Task lifecycle events and the rules that fold them into one history row per task id.

Pure: the recorder, the PostgreSQL upsert and the tests all follow these rules. Events reach
PostgreSQL out of order (several processes, batches), so a row keeps the status of the newest
event, except that a final status (an outcome) is never replaced by a stage, and always
replaces one. That makes the result independent of the order events arrive in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from db.models import FINAL_STATUSES

# Columns an event may fill; a later non-null value wins.
DATA_FIELDS = (
    "task_name", "task_type", "capability", "engine", "priority", "payload", "payload_digest",
    "result", "error", "worker", "confidence", "reason", "started_at", "finished_at", "runtime",
)  # fmt: skip


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
